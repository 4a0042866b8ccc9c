package keyed

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// One key's holders never overlap; another key is not held up by it.
func TestOneAtATimePerKey(t *testing.T) {
	var m Mutexes[string]
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer m.Lock("a")()
			n := inside.Add(1)
			if n > most.Load() {
				most.Store(n)
			}
			time.Sleep(2 * time.Millisecond)
			inside.Add(-1)
		}()
	}
	unlock := m.Lock("a")
	other := make(chan struct{})
	go func() { defer m.Lock("b")(); close(other) }()
	select {
	case <-other:
	case <-time.After(time.Second):
		t.Fatal("key b waited for key a")
	}
	unlock()
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders of one key at once", most.Load())
	}
}
