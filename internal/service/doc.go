// Package service runs `celpolicy serve`: the policy engine with hot
// reload, the scheduler, metrics, the audit log and the HTTP server,
// until its context ends, then shuts them down gracefully.
package service
