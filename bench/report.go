package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// report collects the results of every scenario and prints them as
// Markdown tables, after a header with the machine and the settings.
type report struct {
	mu     sync.Mutex
	set    settings
	tables []*table
	notes  []string
}

type table struct {
	title  string
	header []string
	rows   [][]string
	notes  []string
}

func newReport(set settings) *report { return &report{set: set} }

func (r *report) table(title string, header ...string) *table {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &table{title: title, header: header}
	r.tables = append(r.tables, t)
	return t
}

func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = cell(c)
	}
	t.rows = append(t.rows, row)
	// Show each row as it comes, so a long run is followable.
	progress("%s: %s", t.title, strings.Join(row, " | "))
}

func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

func (r *report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func cell(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Duration:
		return dur(x)
	case float64:
		return fmt.Sprintf("%.0f", x)
	default:
		return fmt.Sprint(x)
	}
}

// dur prints a latency with about three significant digits.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (r *report) print(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.set
	fmt.Fprintf(w, "\n# Easy Chat benchmark\n\n")
	fmt.Fprintf(w, "- machine: %d cores (GOMAXPROCS %d), %s/%s, %s, RLIMIT_NOFILE %d\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), fileLimit())
	fmt.Fprintf(w, "- infrastructure: kafka=%s, mongo=%s, redis=%s\n",
		kind(os.Getenv("KAFKA_BROKERS"), "embedded kfake"),
		kind(os.Getenv("MONGO_URI"), "embedded FerretDB/"+kind(os.Getenv("FERRETDB_POSTGRESQL_URL"), "SQLite")),
		kind(os.Getenv("REDIS_URL"), "embedded miniredis"))
	parts := "stack default"
	if s.partitions > 0 {
		parts = fmt.Sprint(s.partitions)
	}
	chatBatch := "gateway default"
	if s.chatBatch > 0 {
		chatBatch = fmt.Sprint(s.chatBatch)
	}
	fmt.Fprintf(w, "- settings: connector BATCH_MAX=%d, gateway chat batch=%s, Kafka partitions=%s, ack mode=only; single chat: %d pairs, %v per step, drain ≤%v; "+
		"group: %d members, %v per rate; connections: %d; push leg: %d×%v per system and N, %d publishers, window %d\n",
		s.batch, chatBatch, parts, s.pairs, s.duration, s.drain, s.groupSize, s.groupDur, s.conns, s.pushRounds, s.pushDur, s.pushPar, s.pushWin)
	fmt.Fprintf(w, "- everything (system under test and load generator) shares this machine; function processes run beside this one\n")
	// Scenarios run in the order that suits the machine (cold start before
	// the connections scenario leaves thousands of sockets in TIME_WAIT);
	// tables print in the order of their numbers.
	tables := slices.Clone(r.tables)
	sort.SliceStable(tables, func(i, j int) bool { return tables[i].title < tables[j].title })
	for _, t := range tables {
		fmt.Fprintf(w, "\n## %s\n\n", t.title)
		fmt.Fprintf(w, "| %s |\n", strings.Join(t.header, " | "))
		seps := make([]string, len(t.header))
		for i := range seps {
			seps[i] = "---"
		}
		fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		for _, row := range t.rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
		for _, n := range t.notes {
			fmt.Fprintf(w, "\n%s\n", n)
		}
	}
	if len(r.notes) > 0 {
		fmt.Fprintf(w, "\n## Notes\n\n")
		for _, n := range r.notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}
