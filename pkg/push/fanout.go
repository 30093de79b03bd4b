package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"easychat/pkg/event"
)

// Router finds the gateway instances (internal base URLs) holding sockets of
// users.
type Router interface {
	Lookup(ctx context.Context, users []string) (map[string][]string, error)
}

// Sender posts a batch to one gateway instance; Client is one.
type Sender interface {
	Send(ctx context.Context, addr string, batch event.Push) (Result, error)
}

// Fanout delivers items to the sockets of their users wherever they are: one
// route lookup, one batch per gateway instance holding any of them, the
// instances in parallel. Users with no socket are skipped: what they missed
// reaches them by listing or sync. The error joins the failed lookups and
// sends; the other instances are still served.
func Fanout(ctx context.Context, r Router, s Sender, items []event.PushItem) error {
	var users []string
	seen := map[string]bool{}
	for _, it := range items {
		for _, u := range it.Users {
			if !seen[u] {
				seen[u] = true
				users = append(users, u)
			}
		}
	}
	if len(users) == 0 {
		return nil
	}
	routes, err := r.Lookup(ctx, users)
	if err != nil {
		return fmt.Errorf("looking up routes of %d users: %w", len(users), err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for addr, held := range routes {
		here := make(map[string]bool, len(held))
		for _, u := range held {
			here[u] = true
		}
		var batch event.Push
		for _, it := range items {
			var us []string
			for _, u := range it.Users {
				if here[u] {
					us = append(us, u)
				}
			}
			if len(us) == 0 {
				continue
			}
			// The same users as the item before (a group's next message):
			// listed once, which for a large group is most of the batch.
			if n := len(batch.Items); n > 0 && slices.Equal(batch.Items[n-1].Users, us) {
				last := &batch.Items[n-1]
				last.Next = append(last.Next, event.PushFrame{Frame: it.Frame, Origin: it.Origin})
				last.Next = append(last.Next, it.Next...)
				continue
			}
			batch.Items = append(batch.Items, event.PushItem{Users: us, Frame: it.Frame, Origin: it.Origin, Next: it.Next})
		}
		if len(batch.Items) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Send(ctx, addr, batch); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
