// Package registrytest starts throwaway registries on 127.0.0.1 for tests:
// go-containerregistry's in-memory one, and the CNCF distribution registry
// that Debian ships as docker-registry, for integration tests.
//
//	host := registrytest.Start(t) // "127.0.0.1:PORT", stopped at cleanup
package registrytest
