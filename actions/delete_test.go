package actions_test

import (
	"context"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// manifestsOnly answers a DELETE of a manifest by tag as the distribution
// registry before v3 does: it deletes manifests by digest only.
func manifestsOnly(next http.Handler) http.Handler {
	byTag := regexp.MustCompile(`/manifests/[^/]+$`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && byTag.MatchString(r.URL.Path) && !regexp.MustCompile(`sha256:`).MatchString(r.URL.Path) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name          string
		scope         string
		dryRun        bool
		manifestsOnly bool
		otherTag      bool // v1-copy points at the same manifest
		moved         bool // v1 is pushed again, with other content, after the decision
		want          actions.Outcome
		wantErr       string
		wantDetail    string
		tagGone       bool
		manifestGone  bool
	}{
		{name: "tag, dry run", scope: "tag", dryRun: true, want: actions.Deleted, wantDetail: "tag v1"},
		{name: "tag", scope: "tag", want: actions.Deleted, tagGone: true},
		{name: "manifest, dry run", scope: "manifest", dryRun: true, want: actions.Deleted, wantDetail: "every tag on it"},
		{name: "manifest", scope: "manifest", want: actions.Deleted, manifestGone: true},
		{name: "a moved tag is left alone", scope: "tag", moved: true, want: actions.Skipped, wantDetail: "tag moved to"},
		{name: "registry deleting manifests only: the manifest of a tag alone", scope: "tag", manifestsOnly: true,
			// ggcr's registry keeps the tags of a deleted manifest, where
			// distribution drops them (see the runner's integration test).
			want: actions.Deleted, wantDetail: "by deleting its manifest", manifestGone: true},
		{name: "registry deleting manifests only: a shared manifest is kept", scope: "tag", manifestsOnly: true, otherTag: true,
			want: actions.Failed, wantErr: "tags v1-copy share manifest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := registrytest.MemoryHandler()
			if tc.manifestsOnly {
				h = manifestsOnly(h)
			}
			host := registrytest.Handler(t, h)
			img := newImage(t, "linux/amd64")
			push(t, host+"/sandbox/app:v1", img)
			push(t, host+"/sandbox/app:v2", newImage(t, "linux/amd64"))
			if tc.otherTag {
				push(t, host+"/sandbox/app:v1-copy", img)
			}
			clock := &instantClock{}
			client := newClient(t, clock, host)
			decided := read(t, client, host+"/sandbox/app:v1")
			if tc.moved {
				push(t, host+"/sandbox/app:v1", newImage(t, "linux/amd64"))
			}
			d, err := actions.NewDeleter(client, actions.WithClock(clock))
			require.NoError(t, err)
			task := actions.Task{Type: engine.ActionDelete, Policy: "retention", Image: decided, DryRun: tc.dryRun,
				Action: &engine.PlannedAction{Type: "delete", Policy: "retention", Reference: decided.Reference, Scope: tc.scope}}

			res, err := d.Execute(context.Background(), task)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.want, res.Outcome)
			assert.Contains(t, res.Detail, tc.wantDetail)
			assert.Equal(t, tc.tagGone, headDigest(t, host+"/sandbox/app:v1") == "", "tag gone")
			assert.Equal(t, tc.manifestGone, headDigest(t, host+"/sandbox/app@"+digestOf(t, img)) == "", "manifest gone")
			assert.NotEmpty(t, headDigest(t, host+"/sandbox/app:v2"), "other tags stay")
		})
	}
}
