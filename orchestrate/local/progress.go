package local

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// progress draws one live status line on a terminal: how many steps are
// done, which are running, and the time so far.
type progress struct {
	w       io.Writer
	total   int
	start   time.Time
	mu      sync.Mutex
	running []string
	done    int
	failed  int
}

func newProgress(w io.Writer, total int) *progress {
	if w == nil {
		return nil
	}
	return &progress{w: w, total: total, start: time.Now()}
}

func (p *progress) started(name string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.running = append(p.running, name)
	p.mu.Unlock()
	p.draw()
}

func (p *progress) ended(name, status string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	if i := slices.Index(p.running, name); i >= 0 {
		p.running = slices.Delete(p.running, i, i+1)
	}
	p.done++
	if status == Failed {
		p.failed++
	}
	p.mu.Unlock()
	p.draw()
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("[%d/%d] %s", p.done, p.total, time.Since(p.start).Round(100*time.Millisecond))
	if len(p.running) > 0 {
		line += "  running: " + strings.Join(p.running, ", ")
	}
	if p.failed > 0 {
		line += fmt.Sprintf("  failed: %d", p.failed)
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

// finish clears the line before the summary table.
func (p *progress) finish() {
	if p == nil {
		return
	}
	fmt.Fprint(p.w, "\r\033[K")
}
