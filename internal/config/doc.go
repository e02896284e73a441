// Package config reads the configuration of `celpolicy serve`: defaults,
// then celpolicy.yaml, then CELPOLICY_* environment variables, then
// flags, each overriding the one before, validated with errors that name
// the setting and where its value came from.
package config
