// Package runner makes one replication pass: it lists the images the
// policies' sources name, decides each, and has the action executors
// carry the decisions out, reporting every image in a Summary.
//
// The smallest use:
//
//	set, err := engine.Load([]string{"policies/"})
//	...
//	sum, err := runner.Run(ctx, set, runner.Options{DryRun: true})
//	fmt.Println(sum.Copied, sum.Failed)
//
// A scheduler runs one policy's sources with Options.Policy; N processes
// cover a large registry exactly once with Options.Shard.
package runner
