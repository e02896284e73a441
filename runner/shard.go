package runner

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Shard selects the repositories one of N processes handles: those whose
// name hashes to I (0 ≤ I < N). The zero Shard, and N = 1, take all.
// Hashing is jump consistent hashing (Lamping and Veach) over the
// registry host and repository, so every repository goes to exactly one
// shard, and when N grows only about 1/N of them move.
type Shard struct{ I, N int }

// ParseShard reads "I/N" as the --shard flag and a Kubernetes Indexed
// Job's completion index give it.
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 0/4", s)
	}
	si, err1 := strconv.Atoi(i)
	sn, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want I/N with whole numbers, e.g. 0/4", s)
	}
	sh := Shard{I: si, N: sn}
	return sh, sh.validate()
}

func (s Shard) validate() error {
	if s == (Shard{}) {
		return nil
	}
	if s.N < 1 || s.I < 0 || s.I >= s.N {
		return fmt.Errorf("shard %d/%d: want 0 ≤ I < N", s.I, s.N)
	}
	return nil
}

// String is "I/N", or "" for the zero Shard.
func (s Shard) String() string {
	if s == (Shard{}) {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.I, s.N)
}

// Owns reports whether the repository (host/path) belongs to this shard.
func (s Shard) Owns(repository string) bool {
	if s.N <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(repository))
	return jump(h.Sum64(), s.N) == s.I
}

// jump is jump consistent hashing: the bucket in [0, n) of key. Written
// out because it is ten lines of a published algorithm.
func jump(key uint64, n int) int {
	var b, j int64 = -1, 0
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}
