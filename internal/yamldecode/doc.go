// Package yamldecode fills Go values from yaml.Node trees strictly:
// unknown fields (with a did-you-mean), wrong types, duplicate keys and
// missing required fields are all reported, each at its line and column.
// yaml.v3's own KnownFields reports only a line, and only the first
// problem; policy and test authors need all of them.
//
// Struct fields are named by their yaml tag, else their json tag; a
// `required:"true"` tag makes one required. Merge keys (<<: *anchor)
// are expanded.
package yamldecode
