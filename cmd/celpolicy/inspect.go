package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/registry"
)

func newInspectCmd() *cobra.Command {
	var output string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "inspect REF",
		Short: "Print an image as policies see it, read from its registry",
		Long: `inspect reads an image's manifest (or index), config and referrers from its
registry and prints the value of ` + "`image`" + ` in policy expressions: registry,
repository, tag, digest, mediaType, labels, annotations, created, size, layers,
platforms and referrers. age is left out: eval computes it from its clock.

REF is a tag or digest reference; Docker Hub names work as in docker pull.
Credentials come from the docker config (docker login) and its helpers.

The JSON output (the default) is accepted as is by eval --image-file.

Exit code 0 when the image was read, 1 when it could not be.`,
		Example: `  celpolicy inspect nginx:1.25
  celpolicy inspect -o text ghcr.io/acme/app@sha256:4b0e...
  celpolicy inspect --insecure localhost:5000/team/app:v1 | celpolicy eval --policies policies/ --image-file -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return &exitError{code: exitUsage, err: fmt.Errorf("-o must be json or text, not %q", output)}
			}
			if err := runInspect(cmd.Context(), args[0], output, insecure, cmd.OutOrStdout()); err != nil {
				return &exitError{code: exitFailure, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "json", "output format: json or text")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to the image's registry")
	return cmd
}

// runInspect reads ref and writes it to w as JSON or text. opts are added
// to the registry client's (tests pass a keychain and transport).
func runInspect(ctx context.Context, ref, output string, insecure bool, w io.Writer, opts ...registry.Option) error {
	base := []registry.Option{registry.WithVersion(version)}
	if insecure {
		host, _, _, _, err := conditions.ParseReference(ref)
		if err != nil {
			return err
		}
		base = append(base, registry.WithHosts(registry.Host{Host: host, Insecure: true}))
	}
	client, err := registry.New(append(base, opts...)...)
	if err != nil {
		return err
	}
	img, err := client.Image(ctx, ref)
	if err != nil {
		return err
	}
	if output == "json" {
		return writeJSON(w, img)
	}
	return writeImage(w, img)
}

// writeImage lists an image for people, under the names policies use.
func writeImage(w io.Writer, img *conditions.Image) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", k, v)
	}
	row("reference", img.Reference)
	row("registry", img.Registry)
	row("repository", img.Repository)
	row("tag", img.Tag)
	row("digest", img.Digest)
	row("mediaType", img.MediaType)
	created := ""
	if !img.Created.IsZero() {
		created = img.Created.Format(time.RFC3339)
	}
	row("created", created)
	row("size", fmt.Sprintf("%d bytes (%s)", img.Size, humanBytes(img.Size)))
	row("platforms", strings.Join(img.Platforms, ", "))
	if img.Source != "" {
		row("source", img.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	section := func(title string, lines []string) {
		if len(lines) == 0 {
			fmt.Fprintf(w, "%s: -\n", title)
			return
		}
		fmt.Fprintf(w, "%s:\n", title)
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	section("labels", keyValues(img.Labels))
	section("annotations", keyValues(img.Annotations))
	var layers []string
	for _, l := range img.Layers {
		layers = append(layers, fmt.Sprintf("%s  %9s  %s", l.Digest, humanBytes(l.Size), l.MediaType))
	}
	section("layers", layers)
	var refs []string
	for _, r := range img.Referrers {
		refs = append(refs, fmt.Sprintf("%s  %s", r.Digest, r.ArtifactType))
	}
	section("referrers", refs)
	return nil
}

func keyValues(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// humanBytes is a size in decimal units, as registries' web pages show it.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
