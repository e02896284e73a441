// Package engine turns policy files into a decision per target registry:
// it decodes and validates Policy and Registry documents, compiles them
// once into an immutable PolicySet, and evaluates an image against it.
//
// The smallest use:
//
//	set, err := engine.Load([]string{"policies/"})
//	if err != nil { ... } // an ErrorList: every problem, with file:line:col
//	dec, err := set.Evaluate(ctx, &conditions.Image{Reference: "docker.io/library/nginx:1.25", ...})
//	for name, v := range dec.Targets { fmt.Println(name, v.Verdict, v.Destination, v.Reason) }
//
// A PolicySet is safe for concurrent use. The engine reads no network:
// images come from the caller (see package registry).
package engine
