package runner_test

import (
	"fmt"

	"github.com/celpolicy/celpolicy/runner"
)

// Four processes, e.g. the pods of a Kubernetes Indexed Job, each take
// the repositories of one shard: every repository goes to exactly one.
func ExampleShard() {
	shard, err := runner.ParseShard("1/4")
	if err != nil {
		panic(err)
	}
	repos := []string{"reg.example/team/app", "reg.example/team/api", "reg.example/infra/proxy"}
	owners := 0
	for _, r := range repos {
		for i := range shard.N {
			if (runner.Shard{I: i, N: shard.N}).Owns(r) {
				owners++
			}
		}
	}
	fmt.Println(shard, owners == len(repos))
	// Output: 1/4 true
}
