// Package actions carries out decisions: it copies, blocks, notifies and
// deletes, one executor per action type.
//
// Executors are looked up in an Executors map that the caller builds, so
// an embedding replicator can swap in its own copier:
//
//	execs, err := actions.Standard(client, actions.WithLogger(audit))
//	execs[engine.ActionReplicate] = myCopier // any Executor
//	res, err := execs.Execute(ctx, actions.Task{Type: engine.ActionReplicate, ...})
//
// The standard executors are:
//   - replicate (Replicator): copies the image a verdict names to its
//     destination with go-containerregistry, single manifests and whole
//     indexes, an index filtered to the verdict's platforms, referrers
//     (signatures, SBOMs) when the verdict asks; skips a destination that
//     already holds the digest; retries 408, 429, 5xx and connection
//     errors with exponential backoff and jitter.
//   - block (Blocker): copies nothing and records the refusal in the
//     result and the audit log.
//   - notify (Notifier): POSTs a JSON event to the webhook, signed with
//     HMAC-SHA256 when a secret is configured, with a timeout and retries.
//   - delete (Deleter): removes the tag, or the manifest, from the source
//     registry.
//
// Every executor honours Task.DryRun: it says what it would do and
// changes nothing. See docs/actions.md for the details of each.
package actions
