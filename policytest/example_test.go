package policytest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/celpolicy/celpolicy/policytest"
)

func ExampleRun() {
	clock := policytest.WithClock(func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) })
	rep, err := policytest.Run(context.Background(), []string{filepath.Join("..", "testdata", "policytest", "vacuous")},
		clock, policytest.WithCoverage())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d passed, %d failed\n", rep.Passed, rep.Failed)
	for _, p := range rep.Coverage.Policies {
		fmt.Printf("%s: matched %d, not matched %d, vacuous %t\n", p.Policy, p.Matched, p.NotMatched, p.Vacuous)
	}
	// Output:
	// 2 passed, 0 failed
	// block-untrusted: matched 0, not matched 2, vacuous true
	// release-to-prod: matched 1, not matched 1, vacuous false
}
