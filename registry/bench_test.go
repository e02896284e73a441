package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// Reading 500 tags' metadata from the in-memory registry on loopback:
// cold with a fresh Client (bounded concurrency, default 8), warm from a
// Client that read them all within the tag TTL. ns/op is per 500 reads.

const benchTags = 500

func BenchmarkImagesCold(b *testing.B) {
	host := registrytest.Memory(b)
	refs := pushTags(b, host, "team/app", benchTags)
	ctx := context.Background()
	for b.Loop() {
		c, _, _ := newClient(b)
		for _, r := range c.Images(ctx, refs) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchTags), "ns/image")
}

func BenchmarkImagesWarm(b *testing.B) {
	host := registrytest.Memory(b)
	refs := pushTags(b, host, "team/app", benchTags)
	ctx := context.Background()
	c, ct, _ := newClient(b, registry.WithTagTTL(time.Hour))
	for _, r := range c.Images(ctx, refs) {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	ct.Reset()
	for b.Loop() {
		for _, r := range c.Images(ctx, refs) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	if n := len(ct.Requests()); n != 0 {
		b.Fatalf("warm reads made %d requests", n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchTags), "ns/image")
}
