package engine

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"slices"
	"sort"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/celpolicy/celpolicy/conditions"
)

// WithMemo keeps up to size decisions of the set in a least-recently-used
// memo, keyed by the image fields the set's expressions read (derived
// from their ASTs), the target asked about and, for policies that read
// the clock, which side of each of their time literals `now` and the
// image's age fall on (or `now` itself when a policy reads it otherwise).
// An image evaluated again, or another image that agrees on every field
// the policies read, gets the remembered decision without evaluating a
// policy. The memo belongs to the set: a new set starts empty. A trace
// bypasses it.
//
// Decisions from the memo are shared by every caller that gets them:
// treat a returned Decision as read-only. Default: 0, no memo.
func WithMemo(size int) Option {
	return func(o *options) error {
		if size < 0 {
			return errors.New("memo size must not be negative")
		}
		o.memo = size
		return nil
	}
}

type memo struct {
	cache *lru.Cache[uint64, memoEntry]
	seed  maphash.Seed
	reads *imageReads
	// labels and annotations read one by one, sorted
	labelKeys, annotationKeys []string
	revision                  string
	keys                      sync.Pool // of *memoKey
}

type memoEntry struct {
	key string
	dec *Decision
}

// newMemo returns a memo of size decisions keyed by r, what the set's
// policies read (setReads).
func newMemo(size int, revision string, r *imageReads) (*memo, error) {
	cache, err := lru.New[uint64, memoEntry](size)
	if err != nil {
		return nil, err
	}
	m := &memo{cache: cache, seed: maphash.MakeSeed(), reads: r, revision: revision}
	m.labelKeys, m.annotationKeys = r.mapKeys()
	return m, nil
}

// key writes the memo key of one evaluation into buf.
func (m *memo) key(buf []byte, img *conditions.Image, o *evalOptions) []byte {
	r := m.reads
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	i64 := func(v int64) { buf = binary.AppendVarint(buf, v) }
	str(m.revision)
	str(o.target)
	// The decision names the image and derives destinations from it.
	str(img.Reference)
	str(img.Digest)
	str(img.Registry)
	str(img.Repository)
	str(img.Tag)
	f := r.fields
	if f.has(readMediaType) {
		str(img.MediaType)
	}
	if f.has(readSource) {
		str(img.Source)
	}
	if f.has(readSize) {
		i64(img.Size)
	}
	if f.has(readCreated) || r.clock {
		i64(img.Created.UnixNano())
		buf = append(buf, boolByte(img.Created.IsZero()))
	}
	if f.has(readLayers) {
		i64(int64(len(img.Layers)))
		for _, l := range img.Layers {
			str(l.Digest)
			str(l.MediaType)
			i64(l.Size)
		}
	}
	if f.has(readPlatforms) {
		i64(int64(len(img.Platforms)))
		for _, p := range img.Platforms {
			str(p)
		}
	}
	if f.has(readReferrers) {
		i64(int64(len(img.Referrers)))
		for _, ref := range img.Referrers {
			str(ref.ArtifactType)
			str(ref.Digest)
		}
	}
	buf = m.mapKey(buf, img.Labels, f.has(readLabels), m.labelKeys)
	buf = m.mapKey(buf, img.Annotations, f.has(readAnnotations), m.annotationKeys)
	// The clock: now itself, or where it and the image's age fall among
	// the literals they are compared with.
	if r.clock {
		i64(o.now.UnixNano())
		i64(img.Age.Nanoseconds())
		return buf
	}
	if len(r.ages) > 0 {
		age := img.Age
		if !img.Created.IsZero() {
			age = o.now.Sub(img.Created)
		}
		i := sort.Search(len(r.ages), func(i int) bool { return r.ages[i] >= age })
		i64(int64(i))
		buf = append(buf, boolByte(i < len(r.ages) && r.ages[i] == age))
	}
	if len(r.nows) > 0 {
		i := sort.Search(len(r.nows), func(i int) bool { return !r.nows[i].Before(o.now) })
		i64(int64(i))
		buf = append(buf, boolByte(i < len(r.nows) && r.nows[i].Equal(o.now)))
	}
	return buf
}

func (m *memo) mapKey(buf []byte, mp map[string]string, whole bool, keys []string) []byte {
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	if whole {
		ks := make([]string, 0, len(mp))
		for k := range mp {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		buf = binary.AppendUvarint(buf, uint64(len(ks)))
		for _, k := range ks {
			str(k)
			str(mp[k])
		}
		return buf
	}
	for _, k := range keys {
		v, ok := mp[k]
		buf = append(buf, boolByte(ok))
		if ok {
			str(v)
		}
	}
	return buf
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// memoKey is the key of one evaluation, in a pooled buffer.
type memoKey struct {
	buf  []byte
	hash uint64
}

// lookup returns the remembered decision of an evaluation, or the key
// to remember it under with remember.
func (m *memo) lookup(img *conditions.Image, o *evalOptions) (*Decision, *memoKey) {
	k, _ := m.keys.Get().(*memoKey)
	if k == nil {
		k = &memoKey{}
	}
	k.buf = m.key(k.buf[:0], img, o)
	k.hash = maphash.Bytes(m.seed, k.buf)
	if e, ok := m.cache.Get(k.hash); ok && e.key == string(k.buf) {
		m.keys.Put(k)
		return e.dec, nil
	}
	return nil, k
}

// remember stores d under k when keep, and releases k.
func (m *memo) remember(k *memoKey, d *Decision, keep bool) {
	if keep {
		m.cache.Add(k.hash, memoEntry{key: string(k.buf), dec: d})
	}
	m.keys.Put(k)
}
