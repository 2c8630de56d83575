package testenv

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"

	"runtime/metrics"
)

// ReplicateCSV writes dst: src's header, then its rows n times (streamed,
// so a 100× copy never sits in memory). A dst of the right size is kept, so
// benchmarks write their copies once into .cache/bench/.
func ReplicateCSV(t testing.TB, src, dst string, n int) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	header, body, _ := bytes.Cut(data, []byte("\n"))
	if !bytes.HasSuffix(body, []byte("\n")) {
		body = append(body, '\n')
	}
	size := int64(len(header) + 1 + n*len(body))
	if st, err := os.Stat(dst); err == nil && st.Size() == size {
		return
	}
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(header)
	f.Write([]byte("\n"))
	for range n {
		if _, err := f.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// SampleHeap records into peak the most live heap seen until stop is called.
func SampleHeap(peak *uint64) (stop func()) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > *peak {
				*peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
