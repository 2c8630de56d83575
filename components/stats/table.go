package stats

import (
	"hash/maphash"
)

// strTable numbers distinct byte strings 0, 1, 2, … in order of first
// insertion. It is an open-addressing hash table over pointer-free slices:
// keys are copied into one arena, so adding a value allocates nothing of
// its own, and the garbage collector has nothing to trace in it however
// many distinct values a feature has (a map[string] of ZIP codes made the
// GC a good share of the work). Lookups take a []byte or a string without
// converting either.
type strTable struct {
	seed  maphash.Seed
	slots []uint64 // 0 = empty, else the hash's top 32 bits << 32 | id+1
	ends  []uint32 // by id: the key is arena[start(id):ends[id]]
	arena []byte
}

func newStrTable() *strTable { return &strTable{seed: maphash.MakeSeed()} }

// Len is the number of distinct keys.
func (t *strTable) Len() int { return len(t.ends) }

func (t *strTable) start(id int) uint32 {
	if id == 0 {
		return 0
	}
	return t.ends[id-1]
}

// key returns id's bytes (valid until the next insert).
func (t *strTable) key(id int) []byte { return t.arena[t.start(id):t.ends[id]] }

// keyString returns id's key as a new string.
func (t *strTable) keyString(id int) string { return string(t.key(id)) }

func (t *strTable) hashBytes(b []byte) uint64  { return maphash.Bytes(t.seed, b) }
func (t *strTable) hashString(s string) uint64 { return maphash.String(t.seed, s) }

// fits bounds the share of used slots (3/4): with linear probing and
// a 32-bit tag in every slot, probes stay short, and the slots take half
// the memory a 1/2 bound would.
func fits(keys, slots int) bool { return 4*keys <= 3*slots }

// reserve makes room for about n keys of total size bytes.
func (t *strTable) reserve(n, bytes int) {
	if !fits(n, len(t.slots)) {
		t.resize(n)
	}
	if cap(t.ends) < n {
		t.ends = append(make([]uint32, 0, n), t.ends...)
	}
	if cap(t.arena) < len(t.arena)+bytes {
		t.arena = append(make([]byte, 0, len(t.arena)+bytes), t.arena...)
	}
}

// resize rebuilds the slots for at least n keys.
func (t *strTable) resize(n int) {
	size := 16
	for !fits(n, size) {
		size *= 2
	}
	t.slots = make([]uint64, size)
	mask := uint64(size - 1)
	// Keys are rehashed rather than their hashes kept: 8 bytes a key
	// saved, and growing is rare once reserve has sized the table.
	for id := range t.ends {
		h := t.hashBytes(t.key(id))
		i := h & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = h>>32<<32 | uint64(id+1)
	}
}

// findBytes returns the id of b, whose hash is h, or -1.
func (t *strTable) findBytes(b []byte, h uint64) int {
	if len(t.slots) == 0 {
		return -1
	}
	mask := uint64(len(t.slots) - 1)
	tag := h >> 32 << 32
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		if s&^0xffffffff == tag {
			id := int(uint32(s)) - 1
			if string(t.key(id)) == string(b) {
				return id
			}
		}
	}
}

// findString is findBytes for a string.
func (t *strTable) findString(v string, h uint64) int {
	if len(t.slots) == 0 {
		return -1
	}
	mask := uint64(len(t.slots) - 1)
	tag := h >> 32 << 32
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		if s&^0xffffffff == tag {
			id := int(uint32(s)) - 1
			if string(t.key(id)) == v {
				return id
			}
		}
	}
}

// insert adds a key known to be absent, with hash h, and returns its id.
// It reports false, adding nothing, when the arena would pass 4 GiB.
func (t *strTable) insert(b []byte, h uint64) (int, bool) { return insertKey(t, b, h) }

// insertString is insert for a string.
func (t *strTable) insertString(v string, h uint64) (int, bool) { return insertKey(t, v, h) }

func insertKey[K []byte | string](t *strTable, k K, h uint64) (int, bool) {
	if uint64(len(t.arena))+uint64(len(k)) > 1<<32-1 {
		return -1, false
	}
	if !fits(len(t.ends)+1, len(t.slots)) {
		t.resize(max(2*len(t.ends), 8))
	}
	id := len(t.ends)
	t.arena = append(t.arena, k...)
	t.ends = append(t.ends, uint32(len(t.arena)))
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = h>>32<<32 | uint64(id+1)
	return id, true
}
