package registrytest

import (
	"io"
	"log"
	"sync"
)

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// syncWriter lets the registry's stdout and stderr share one buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
