package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, documented in the root command's help.
const (
	exitOK       = 0
	exitFailure  = 1 // invalid policies or input, a failed evaluation
	exitUsage    = 2 // wrong flags or arguments
	exitDisallow = 3 // eval --fail-blocked: the image is blocked
)

// exitError carries an exit code through cobra. Its message, when not
// empty, has already been printed or is printed by main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI and returns its exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "celpolicy:", ee.err)
		}
		return ee.code
	}
	// Anything cobra reports itself (unknown flag, wrong arguments).
	fmt.Fprintln(stderr, "celpolicy:", err)
	return exitUsage
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "celpolicy",
		Short: "Policy engine for container-image replication, with rules written in CEL",
		Long: `celpolicy decides, image by image, where a container image may be replicated:
which registries it is copied to (and under which name), where it is blocked and
why, who is notified and what is deleted. Rules are CEL expressions over a typed
description of the image, in Kubernetes-shaped YAML policy files.

Start with:
  celpolicy validate examples/policies
  celpolicy eval --policies examples/policies --image-file examples/images/compliance.json

Exit codes:
  0  success
  1  invalid policies or input, or an evaluation that could not run
  2  wrong flags or arguments
  3  eval --fail-blocked: the image is blocked`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath())}
	})
	// Subcommands: one constructor per file.
	root.AddCommand(
		newValidateCmd(),
		newEvalCmd(),
		newInspectCmd(),
		newTestCmd(),
		newLintCmd(),
		newListCmd(),
		newExplainCmd(),
		newRunCmd(),
		newServeCmd(),
	)
	return root
}
