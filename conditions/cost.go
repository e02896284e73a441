package conditions

import (
	"strings"

	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/overloads"
)

// Cost limits. A unit of cost is one cheap CEL operation (a comparison, a
// field read, one iteration step) or about ten characters of string work;
// on the 2-core dev machine 1,000,000 units take a few milliseconds.
const (
	// StaticCostLimit is the largest worst-case cost an expression may
	// have to compile, estimated with the input bounds below. It stops
	// policies whose cost grows with the square of the input (nested
	// loops over labels with regular expressions inside) before they load.
	StaticCostLimit uint64 = 1_000_000

	// RuntimeCostLimit stops one evaluation of one expression: a guard for
	// inputs beyond the estimate's bounds (an image with 10,000 labels).
	RuntimeCostLimit uint64 = 10_000_000
)

// Input bounds assumed by the static cost estimate. Registries allow more
// in theory; images beyond these are still evaluated, under the runtime
// limit.
const (
	maxStringSize   = 4096 // a label or annotation value
	maxNameSize     = 255  // registry host, repository path
	maxTagSize      = 128  // OCI distribution spec
	maxDigestSize   = 135  // algorithm:hex of sha512
	maxMapEntries   = 256  // labels, annotations, target labels
	maxLayers       = 128  // OCI images rarely have more than 127
	maxPlatforms    = 64
	maxReferrers    = 256
	maxVariableSize = 256 // a list or map held by a variable
)

type estimator struct{}

var _ cost.Estimator = estimator{}

func (estimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	switch overloadID {
	case "string_glob_string":
		// doublestar walks both strings; worst case is their product,
		// bounded here by the pattern's own length.
		s := sizeOf(*target)
		p := sizeOf(args[0])
		return cost.NewCallEstimate(cost.Estimate{Min: 1, Max: 1 + (s.Max*(p.Max+1))/10}, nil)
	case "semver_satisfies_string", "semver_string", "is_semver_string":
		return cost.NewCallEstimate(cost.FixedCostEstimate(10), nil)
	case overloads.IntToString, overloads.UintToString, overloads.DoubleToString,
		overloads.BoolToString, overloads.TimestampToString, overloads.DurationToString:
		// CEL leaves the size of these strings unknown, which would make
		// any concatenation with them unbounded; they are short.
		sz := cost.RangedSizeEstimate(1, 40)
		return cost.NewCallEstimate(cost.FixedCostEstimate(1), &sz)
	}
	// Comparing two versions is constant work; CEL cannot size an opaque
	// value and would call it unbounded.
	if len(args) == 2 && args[0].Type().IsExactType(SemverType) {
		return cost.NewCallEstimate(cost.FixedCostEstimate(1), nil)
	}
	return nil
}

func sizeOf(n cost.AstNode) cost.SizeEstimate {
	if sz := n.ComputedSize(); sz != nil {
		return *sz
	}
	if sz := (estimator{}).EstimateSize(n); sz != nil {
		return *sz
	}
	return cost.FixedSizeEstimate(maxStringSize)
}

func (estimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	if strings.HasPrefix(path[0], VariablePrefix) {
		sz := cost.RangedSizeEstimate(0, maxVariableSize)
		return &sz
	}
	if len(path) < 2 {
		return nil
	}
	str := func(max uint64) *cost.SizeEstimate { sz := cost.RangedSizeEstimate(0, max); return &sz }
	mapOf := func(key, val uint64) *cost.SizeEstimate {
		if len(path) == 3 {
			switch path[2] {
			case "@keys":
				return str(key)
			case "@values":
				return str(val)
			}
		}
		sz := cost.MapSizeEstimate(cost.RangedSizeEstimate(0, maxMapEntries),
			cost.RangedSizeEstimate(0, key), cost.RangedSizeEstimate(0, val))
		return &sz
	}
	listOf := func(n, elem uint64) *cost.SizeEstimate {
		if len(path) >= 3 {
			return str(elem)
		}
		sz := cost.ListSizeEstimate(cost.RangedSizeEstimate(0, n), cost.RangedSizeEstimate(0, elem))
		return &sz
	}
	switch path[0] {
	case "image":
		switch path[1] {
		case "registry", "repository", "source":
			return str(maxNameSize)
		case "tag":
			return str(maxTagSize)
		case "digest":
			return str(maxDigestSize)
		case "reference":
			return str(2*maxNameSize + maxTagSize + maxDigestSize)
		case "mediaType":
			return str(maxNameSize)
		case "labels", "annotations":
			return mapOf(maxNameSize, maxStringSize)
		case "layers":
			return listOf(maxLayers, maxDigestSize)
		case "platforms":
			return listOf(maxPlatforms, maxNameSize)
		case "referrers":
			return listOf(maxReferrers, maxNameSize)
		}
	case "target":
		switch path[1] {
		case "name", "host":
			return str(maxNameSize)
		case "labels":
			return mapOf(maxNameSize, maxStringSize)
		}
	}
	return nil
}
