// Package server is the HTTP layer of `celpolicy serve` as an
// http.Handler that an embedding program can mount: liveness, readiness
// and Prometheus metrics (the REST API for policies and evaluation will
// join them here).
//
//	h, _ := server.New(
//		server.WithReadiness(func() error { return nil }),
//		server.WithMetrics(registry, "/metrics"),
//	)
//	http.ListenAndServe(":8080", h)
package server
