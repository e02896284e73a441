// Package benchmarks holds celpolicy's workloads and side-by-side
// benchmarks. It is its own module so that the peers it is measured
// against never enter the main module's dependencies.
//
//	cd benchmarks && go test -run '^$' -bench . -benchmem
package benchmarks
