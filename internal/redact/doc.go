// Package redact removes credentials from what celpolicy logs and
// reports: URLs lose their user information, query and fragment, where
// tokens and passwords travel.
package redact
