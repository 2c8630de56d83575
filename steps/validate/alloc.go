package validate

import (
	"math/bits"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// recycler is a memory.Allocator for the Parquet page readers of one
// worker: page, dictionary and decompression buffers freed when a column
// chunk's reader closes are handed to the next chunk's reader instead of
// becoming garbage, so reading a column allocates a few buffers in all
// rather than a few per row group (which made the GC a good share of the
// work). Not safe for concurrent use: each worker has its own.
type recycler struct {
	fresh memory.GoAllocator
	free  [64][][]byte // by capacity class: free[k] holds buffers of cap 1<<k
}

// keepPerClass bounds what a recycler holds: a page reader has at most
// three buffers live, so a few per size class is plenty.
const keepPerClass = 4

func sizeClass(n int) int { return bits.Len(uint(max(n, 64) - 1)) }

// Allocate returns a zeroed buffer, as Go's allocator does.
func (r *recycler) Allocate(size int) []byte {
	k := sizeClass(size)
	if l := r.free[k]; len(l) > 0 {
		b := l[len(l)-1]
		r.free[k] = l[:len(l)-1]
		b = b[:size]
		clear(b)
		return b
	}
	return r.fresh.Allocate(1 << k)[:size]
}

// Reallocate grows b to size, keeping its contents.
func (r *recycler) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		return b[:size]
	}
	nb := r.Allocate(size)
	copy(nb, b)
	r.Free(b)
	return nb
}

// Free keeps b for reuse if it is one of ours (a power-of-two capacity).
func (r *recycler) Free(b []byte) {
	c := cap(b)
	if c < 64 || c&(c-1) != 0 {
		return
	}
	k := bits.Len(uint(c)) - 1
	if len(r.free[k]) < keepPerClass {
		r.free[k] = append(r.free[k], b[:0])
	}
}
