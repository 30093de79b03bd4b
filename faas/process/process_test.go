package process_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"easychat/faas/process"
)

// syncBuffer lets the test read logs while replica output is still arriving.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStopKillsTheWholeGroup runs a replica that ignores SIGTERM and forks a
// child: Stop must escalate to SIGKILL after the grace period and leave no
// member of the group behind. Its output must reach the logger, tagged.
func TestStopKillsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "replica.sh")
	body := "#!/bin/sh\ntrap '' TERM\necho \"port $PORT\"\necho oops >&2\nsleep 300 &\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	port, err := process.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p, err := process.Start(process.Spec{Function: "fixture", Binary: script, Dir: dir,
		Env: []string{"PATH=" + os.Getenv("PATH")}, Port: port, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}

	// Wait for the forked sleep to join the group.
	deadline := time.Now().Add(5 * time.Second)
	for len(groupMembers(p.PID)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("group of %d never had 2 members: %v", p.PID, groupMembers(p.PID))
		}
		time.Sleep(10 * time.Millisecond)
	}

	const grace = 300 * time.Millisecond
	start := time.Now()
	if err := p.Stop(grace); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < grace {
		t.Errorf("Stop returned after %v, before the grace period: SIGTERM should have been ignored", d)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process was reaped")
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		err := syscall.Kill(-p.PID, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %d still has members %v (kill: %v)", p.PID, groupMembers(p.PID), err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	out := logs.String()
	for _, want := range []string{
		`msg="port ` + strconv.Itoa(port) + `" function=fixture stream=stdout`,
		`msg=oops function=fixture stream=stderr`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

func TestWaitHealthyFailsWhenTheProcessExits(t *testing.T) {
	p, err := process.Start(process.Spec{Function: "quitter", Binary: "/bin/true", Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := p.WaitHealthy(ctx); err == nil || !strings.Contains(err.Error(), "exited before becoming healthy") {
		t.Fatalf("want an early exit error, got %v", err)
	}
}

// groupMembers lists live (non-zombie) pids whose process group is pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:])) // state ppid pgrp ...
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Replica ports stay out of the kernel's ephemeral range, where outgoing
// connections could take them between the probe and the replica's bind.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	for range 20 {
		port, err := process.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < 10000 || port >= low {
			t.Fatalf("port %d outside [10000, %d)", port, low)
		}
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("port %d is not free: %v", port, err)
		}
		l.Close()
	}
}
