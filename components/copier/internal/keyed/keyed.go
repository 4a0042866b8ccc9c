// Package keyed holds one mutex per key: work on one key goes one at a time, other keys go on.
package keyed

import "sync"

// Mutexes is a set of mutexes by key, made on first use; the zero value is ready.
type Mutexes[K comparable] struct {
	mu    sync.Mutex
	locks map[K]*sync.Mutex
}

// Lock locks key's mutex and returns its unlock.
func (m *Mutexes[K]) Lock(key K) (unlock func()) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[K]*sync.Mutex{}
	}
	lock, ok := m.locks[key]
	if !ok {
		lock = &sync.Mutex{}
		m.locks[key] = lock
	}
	m.mu.Unlock()
	lock.Lock()
	return lock.Unlock
}
