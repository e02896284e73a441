// Command schemagen writes the JSON Schema of policy files, generated
// from the engine's decoding types: go generate ./engine.
package main
