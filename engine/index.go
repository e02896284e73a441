package engine

import (
	"slices"
	"sort"

	"github.com/celpolicy/celpolicy/conditions"
)

// policyIndex maps image field values to the policies (indices into
// PolicySet.policies, i.e. in evaluation order) that may match an image
// with those values. Each indexed policy is filed under the atoms of one
// of its clauses, the most selective; a policy without a clause is
// always a candidate. It is immutable once built.
type policyIndex struct {
	always []int32 // sorted
	fields []*fieldIndex
	n      int // policies in the set
	// chosen is the clause each policy is filed under; nil: always.
	chosen []clause
}

type fieldIndex struct {
	key    fieldKey
	eq     map[string][]int32
	prefix trieNode
	// absent are the policies that read the map entry strictly: an image
	// without the key makes them fail, so they stay candidates.
	absent []int32
}

// add files policy p under atom a of this field.
func (f *fieldIndex) add(a atom, p int32) {
	if a.prefix {
		f.prefix.insert(a.value, p)
	} else {
		f.eq[a.value] = append(f.eq[a.value], p)
	}
	if a.strict && !slices.Contains(f.absent, p) {
		f.absent = append(f.absent, p)
	}
}

// trieNode is a radix trie of prefixes: each node holds the text from
// its parent (label) and the policies whose prefix ends at it.
type trieNode struct {
	label    string
	children []*trieNode // sorted by the first byte of their label
	policies []int32
}

func (t *trieNode) child(c byte) (int, bool) {
	i := sort.Search(len(t.children), func(k int) bool { return t.children[k].label[0] >= c })
	return i, i < len(t.children) && t.children[i].label[0] == c
}

func (t *trieNode) insert(prefix string, p int32) {
	n := t.find(prefix)
	n.policies = append(n.policies, p)
}

// clone copies the trie's nodes; their policy slices are shared, clipped
// so that an append copies them.
func (t *trieNode) clone() *trieNode {
	c := &trieNode{label: t.label, policies: slices.Clip(t.policies), children: make([]*trieNode, len(t.children))}
	for i, ch := range t.children {
		c.children[i] = ch.clone()
	}
	return c
}

// get returns the node where prefix ends, or nil; it changes nothing.
func (t *trieNode) get(prefix string) *trieNode {
	n := t
	for prefix != "" {
		i, ok := n.child(prefix[0])
		if !ok {
			return nil
		}
		c := n.children[i]
		if len(c.label) > len(prefix) || prefix[:len(c.label)] != c.label {
			return nil
		}
		n, prefix = c, prefix[len(c.label):]
	}
	return n
}

// find returns the node where prefix ends, creating it.
func (t *trieNode) find(prefix string) *trieNode {
	n := t
	for prefix != "" {
		i, ok := n.child(prefix[0])
		if !ok {
			c := &trieNode{label: prefix}
			n.children = slices.Insert(n.children, i, c)
			return c
		}
		c := n.children[i]
		common := 0
		for common < len(c.label) && common < len(prefix) && c.label[common] == prefix[common] {
			common++
		}
		if common < len(c.label) {
			mid := &trieNode{label: c.label[:common], children: []*trieNode{c}}
			c.label = c.label[common:]
			n.children[i] = mid
			c = mid
		}
		n, prefix = c, prefix[common:]
	}
	return n
}

// collect appends the policies of every prefix of s.
func (t *trieNode) collect(s string, out []int32) []int32 {
	n := t
	for {
		out = append(out, n.policies...)
		if s == "" {
			return out
		}
		var next *trieNode
		for _, c := range n.children { // few children per node: a scan beats a search
			if c.label[0] == s[0] {
				next = c
				break
			}
		}
		if next == nil || len(next.label) > len(s) || s[:len(next.label)] != next.label {
			return out
		}
		n, s = next, s[len(next.label):]
	}
}

// atomKey identifies an atom for the selectivity estimate.
type atomKey struct {
	field  fieldKey
	prefix bool
	value  string
}

// buildIndex files each policy under its most selective clause: the one
// whose atoms the fewest other policies share. terms[i] are the clauses
// of policies[i]; nil terms make a policy always a candidate.
func buildIndex(terms [][]clause) *policyIndex {
	ix := &policyIndex{n: len(terms), chosen: make([]clause, len(terms))}
	shared := make(map[atomKey]int, 4*len(terms))
	strict := map[fieldKey]int{}
	var seen []atomKey // a policy's distinct atoms: few, a scan is enough
	for _, cs := range terms {
		seen = seen[:0]
		for _, c := range cs {
			for _, a := range c {
				k := atomKey{a.field, a.prefix, a.value}
				if slices.Contains(seen, k) {
					continue
				}
				seen = append(seen, k)
				shared[k]++
				if a.strict {
					strict[a.field]++
				}
			}
		}
	}
	// An image without a strictly read key makes every policy reading it
	// a candidate: count a share of those as the atom's cost.
	score := func(c clause) int {
		s := 0
		for _, a := range c {
			s += shared[atomKey{a.field, a.prefix, a.value}]
			if a.strict {
				s += strict[a.field] / 8
			}
		}
		return s
	}
	byField := map[fieldKey]*fieldIndex{}
	for i, cs := range terms {
		if len(cs) == 0 {
			ix.always = append(ix.always, int32(i))
			continue
		}
		best, bestScore := cs[0], score(cs[0])
		for _, c := range cs[1:] {
			if sc := score(c); sc < bestScore {
				best, bestScore = c, sc
			}
		}
		ix.chosen[i] = best
		for _, a := range best {
			f := byField[a.field]
			if f == nil {
				f = &fieldIndex{key: a.field, eq: map[string][]int32{}}
				byField[a.field] = f
				ix.fields = append(ix.fields, f)
			}
			f.add(a, int32(i))
		}
	}
	return ix
}

// maxIndexUpdate is how many changed policies an index is updated for
// rather than built again.
const maxIndexUpdate = 64

// update returns a copy of ix in which the policies at the positions of
// changed are filed under their new terms; the policies at every other
// position must be unchanged. ix itself, in use by evaluations, is left
// as it was: what changes is copied first. New clauses are chosen by the
// postings they would join.
func (ix *policyIndex) update(changed map[int][]clause) *policyIndex {
	nx := &policyIndex{n: ix.n, chosen: slices.Clone(ix.chosen), always: slices.Clone(ix.always),
		fields: slices.Clone(ix.fields)}
	copied := map[fieldKey]*fieldIndex{}
	field := func(k fieldKey) *fieldIndex {
		if f := copied[k]; f != nil {
			return f
		}
		for i, f := range nx.fields {
			if f.key == k {
				c := &fieldIndex{key: k, eq: make(map[string][]int32, len(f.eq)), prefix: *f.prefix.clone(), absent: slices.Clip(f.absent)}
				for v, ps := range f.eq {
					c.eq[v] = slices.Clip(ps)
				}
				nx.fields[i], copied[k] = c, c
				return c
			}
		}
		c := &fieldIndex{key: k, eq: map[string][]int32{}}
		nx.fields = append(nx.fields, c)
		copied[k] = c
		return c
	}
	without := func(ps []int32, p int32) []int32 {
		return slices.DeleteFunc(slices.Clone(ps), func(q int32) bool { return q == p })
	}
	for i, terms := range changed {
		p := int32(i)
		if old := nx.chosen[i]; old == nil {
			nx.always = without(nx.always, p)
		} else {
			for _, a := range old {
				f := field(a.field)
				if a.prefix {
					n := f.prefix.find(a.value)
					n.policies = without(n.policies, p)
				} else if ps := without(f.eq[a.value], p); len(ps) > 0 {
					f.eq[a.value] = ps
				} else {
					delete(f.eq, a.value)
				}
				if a.strict {
					f.absent = without(f.absent, p)
				}
			}
		}
		nx.chosen[i] = nil
		if len(terms) == 0 {
			j, _ := slices.BinarySearch(nx.always, p)
			nx.always = slices.Insert(nx.always, j, p)
			continue
		}
		best, bestScore := terms[0], -1
		for _, c := range terms {
			sc := 0
			for _, a := range c {
				sc += nx.postings(a)
			}
			if bestScore < 0 || sc < bestScore {
				best, bestScore = c, sc
			}
		}
		nx.chosen[i] = best
		for _, a := range best {
			field(a.field).add(a, p)
		}
	}
	return nx
}

// postings estimates how many policies an atom would share a posting
// with, as buildIndex scores it.
func (ix *policyIndex) postings(a atom) int {
	for _, f := range ix.fields {
		if f.key != a.field {
			continue
		}
		n := len(f.eq[a.value])
		if a.prefix {
			n = 0
			if t := f.prefix.get(a.value); t != nil {
				n = len(t.policies)
			}
		}
		if a.strict {
			n += len(f.absent) / 8
		}
		return n
	}
	return 0
}

// candidates appends to buf[:0], in evaluation order, the policies that
// may match img. Evaluations keep buf between decisions.
func (ix *policyIndex) candidates(img *conditions.Image, buf []int32) []int32 {
	found := buf[:0]
	for _, f := range ix.fields {
		v, ok := fieldValue(img, f.key)
		if !ok {
			found = append(found, f.absent...)
			continue
		}
		found = append(found, f.eq[v]...)
		found = f.prefix.collect(v, found)
	}
	slices.Sort(found)
	found = slices.Compact(found)
	if len(ix.always) > 0 {
		found = mergeSorted(found, ix.always)
	}
	return found
}

// mergeSorted merges two sorted sets of distinct policies into a.
func mergeSorted(a, b []int32) []int32 {
	n := len(a)
	a = append(a, b...)
	if n > 0 && a[n-1] > a[n] {
		slices.Sort(a)
	}
	return a
}

func fieldValue(img *conditions.Image, k fieldKey) (string, bool) {
	switch k.field {
	case "registry":
		return img.Registry, true
	case "repository":
		return img.Repository, true
	case "tag":
		return img.Tag, true
	case "digest":
		return img.Digest, true
	case "reference":
		return img.Reference, true
	case "mediaType":
		return img.MediaType, true
	case "source":
		return img.Source, true
	case "labels":
		v, ok := img.Labels[k.key]
		return v, ok
	case "annotations":
		v, ok := img.Annotations[k.key]
		return v, ok
	}
	return "", false
}
