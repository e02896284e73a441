package actions_test

import (
	"context"
	"fmt"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/engine"
)

// A webhook receiver checks X-Celpolicy-Signature against the body it
// received, with hmac.Equal. The value is what
// `openssl dgst -sha256 -hmac s3cret` prints for the body.
func ExampleSign() {
	body := []byte(`{"type":"decision"}`)
	fmt.Println(actions.Sign([]byte("s3cret"), body))
	// Output: sha256=8c8fdad2c3e0520b247529f9a97d52e4832e62d5f36a2e38cc9605f0717d8a3a
}

// An embedding replicator swaps in its own copier; the other executors
// stay.
func ExampleExecutors() {
	execs := actions.Executors{
		engine.ActionReplicate: actions.ExecutorFunc(func(ctx context.Context, t actions.Task) (actions.Result, error) {
			return actions.Result{Outcome: actions.Copied, Detail: "by my copier to " + t.Verdict.Destination}, nil
		}),
	}
	res, err := execs.Execute(context.Background(), actions.Task{Type: engine.ActionReplicate,
		Verdict: &engine.Verdict{Destination: "mirror.example/team/app:v1"}})
	fmt.Println(res.Outcome, res.Detail, err)
	// Output: copied by my copier to mirror.example/team/app:v1 <nil>
}
