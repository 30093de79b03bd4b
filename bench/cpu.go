package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// CPU accounting. Every process of the system is read from /proc (user +
// system time): the function replicas (with any children) and this process,
// which holds the load generator beside the in-process part of the stack
// (gateway, connector, Kafka, FerretDB, Redis). That one is split by a CPU
// profile taken over the same window: the load generator runs under the
// pprof label role=loadgen (labels pass to the goroutines it starts), so its
// share of the samples is its share of the process's time. Runtime work no
// goroutine is charged for (background GC) counts as the stack's: an
// overestimate of the system's cost, never of the load generator's.

const loadgenLabel = "loadgen"

// asLoadgen runs f with the load generator's label.
func asLoadgen(ctx context.Context, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels("role", loadgenLabel), f)
}

// cpuMeter measures one window.
type cpuMeter struct {
	sys   *system
	start map[int]time.Duration // pid → CPU so far
	names map[int]string        // pid → what it is
	prof  *bytes.Buffer         // nil: the split is not available
}

// cpuUse is what a window cost.
type cpuUse struct {
	procs   map[string]time.Duration // "bench" and "fn/<function>"
	loadgen time.Duration            // the bench process's share spent generating load (-1: unknown)
}

func (sys *system) startCPU() *cpuMeter {
	m := &cpuMeter{sys: sys}
	m.names = sys.processes()
	m.start = map[int]time.Duration{}
	for pid := range m.names {
		m.start[pid] = cpuOf(pid)
	}
	if sys.set.cpuProfile == "" {
		var buf bytes.Buffer
		if pprof.StartCPUProfile(&buf) == nil {
			m.prof = &buf
		}
	}
	return m
}

func (m *cpuMeter) stop() cpuUse {
	u := cpuUse{procs: map[string]time.Duration{}, loadgen: -1}
	names := m.sys.processes()
	for pid, name := range names {
		u.procs[name] += max(0, cpuOf(pid)-m.start[pid])
	}
	if m.prof != nil {
		pprof.StopCPUProfile()
		if share, err := loadgenShare(m.prof.Bytes()); err == nil {
			u.loadgen = time.Duration(share * float64(u.procs["bench"]))
		} else {
			progress("CPU profile of the bench process: %v", err)
		}
	}
	return u
}

// processes names every process of the system by pid.
func (sys *system) processes() map[int]string {
	out := map[int]string{os.Getpid(): "bench"}
	for _, f := range sys.stack.Provider.Functions() {
		for _, r := range sys.stack.Provider.Replicas(f.Name) {
			out[r.PID] = "fn/" + f.Name
		}
	}
	return out
}

// loadgenShare is the share of a CPU profile's time spent under the load
// generator's label.
func loadgenShare(b []byte) (float64, error) {
	p, err := profile.Parse(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	vi := len(p.SampleType) - 1 // cpu nanoseconds
	var all, lg int64
	for _, s := range p.Sample {
		all += s.Value[vi]
		if slices.Contains(s.Label["role"], loadgenLabel) {
			lg += s.Value[vi]
		}
	}
	if all == 0 {
		return 0, fmt.Errorf("no samples")
	}
	return float64(lg) / float64(all), nil
}

// stack is the CPU the system under test used: every process but the load
// generator's share of the bench process.
func (u cpuUse) stack() time.Duration {
	var t time.Duration
	for _, d := range u.procs {
		t += d
	}
	return t - max(0, u.loadgen)
}

// perMessage is the stack's CPU per delivered message, in µs.
func (u cpuUse) perMessage(delivered int) string {
	if delivered <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(u.stack().Microseconds())/float64(delivered), 'f', 0, 64)
}

// String lists CPU seconds per process, the bench process split.
func (u cpuUse) String() string {
	names := make([]string, 0, len(u.procs))
	for n := range u.procs {
		names = append(names, n)
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		d := u.procs[n]
		if d < 10*time.Millisecond {
			continue
		}
		if n == "bench" && u.loadgen >= 0 {
			parts = append(parts, fmt.Sprintf("bench %.2f s (in-process stack %.2f s, load generator %.2f s)",
				d.Seconds(), (d-u.loadgen).Seconds(), u.loadgen.Seconds()))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f s", strings.TrimPrefix(n, "fn/"), d.Seconds()))
	}
	return strings.Join(parts, ", ")
}

// cpuOf is a process's CPU time: with its descendants for a function
// replica; without them for this process, whose children are the replicas.
func cpuOf(pid int) time.Duration {
	if pid == os.Getpid() {
		return procCPU(pid)
	}
	return treeCPU(pid)
}

// treeCPU is the CPU time of pid and its descendants.
func treeCPU(pid int) time.Duration {
	t := procCPU(pid)
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(c); err == nil {
				t += treeCPU(n)
			}
		}
	}
	return t
}
