// Command bench measures Easy Chat end to end on this machine and prints one
// table: single-chat latency and the highest sustainable rate, group fan-out,
// idle connections per gateway and their memory, cold start, and the push leg
// side by side with Centrifugo under the same load generator. It is a
// benchmark, not a test, and never runs in CI:
//
//	make bench
//	make bench BENCH_ARGS="-scenario single -search 3000,5000"
//
// It starts the whole system in-process (easychat/devstack/stack) with
// embedded defaults in a temporary state dir; KAFKA_BROKERS, MONGO_URI,
// REDIS_URL and FERRETDB_POSTGRESQL_URL select real services as for the dev
// stack. See bench/README.md for what each scenario does.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"easychat/devstack/stack"
	"easychat/gateway/server"
	"easychat/pkg/store"
	"easychat/pkg/token"
)

// settings are the flags; every one is printed with the results.
type settings struct {
	scenarios  map[string]bool
	pairs      int
	rates      []float64
	search     []float64
	duration   time.Duration
	drain      time.Duration
	batch      int
	partitions int

	groupSize  int
	groupRates []float64
	groupDur   time.Duration

	hotRates      []float64
	hotGroupRates []float64

	conns          int
	chatBatch      int
	connsInProcess bool
	coldRuns       int
	pushN          []int
	pushDur        time.Duration
	pushPar        int
	pushWin        int
	pushInProcess  bool
	pushRounds     int
	cfBin          string
	cfVersion      string

	growthSizes []int

	cpuProfile string
	pprofAddr  string
	profileDir string
	logLevel   string
}

var allScenarios = []string{"single", "group", "hot", "hotgroup", "cold", "conns", "push", "growth"}

func parseFlags() settings {
	var s settings
	scen := flag.String("scenario", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", "))
	flag.IntVar(&s.pairs, "pairs", 200, "single chat: sender→receiver pairs (2 sockets and one conversation each)")
	rates := flag.String("rates", "100,1000", "single chat: fixed rates (msg/s, all senders together) to report latency at")
	search := flag.String("search", "2000,3000,3500,4000,5000,6000,8000,10000", "single chat: rates tried in order for the highest sustainable one; stops at the first failure")
	flag.DurationVar(&s.duration, "duration", 10*time.Second, "how long each single-chat step sends")
	flag.DurationVar(&s.drain, "drain", 30*time.Second, "how long to wait for the last deliveries of a step")
	flag.IntVar(&s.batch, "batch", 256, "records per transfer invocation (connector BATCH_MAX), as `make run`")
	flag.IntVar(&s.chatBatch, "chat-batch", 0, "chat frames per gateway→chat request while the gateway's chat requests are busy (GATEWAY_CHAT_BATCH; 0: the gateway default, 1: every frame alone)")
	flag.IntVar(&s.partitions, "partitions", 0, "Kafka partitions of the embedded broker (0: the stack default)")
	flag.IntVar(&s.groupSize, "group-size", 1000, "group fan-out: online members")
	grates := flag.String("group-rates", "10,100", "group fan-out: messages per second into the group")
	flag.DurationVar(&s.groupDur, "group-duration", 10*time.Second, "group fan-out: how long each rate sends")
	hrates := flag.String("hot-rates", "1000,2000,3000,4000,5000", "hot conversation: rates one socket sends to one peer, in order, until one is not sustained")
	hgrates := flag.String("hot-group-rates", "100,300", "hot group: rates one sender posts into the group of -group-size online members")
	flag.IntVar(&s.conns, "conns", 10000, "connections: idle authenticated sockets opened on a separate gateway process")
	flag.BoolVar(&s.connsInProcess, "conns-in-process", false, "connections: use the stack's in-process gateway instead (for heap profiles with -pprof; its RSS includes the clients)")
	flag.IntVar(&s.coldRuns, "cold-runs", 3, "cold start: how many times to scale chat and transfer to zero and send")
	pushN := flag.String("push-n", "1,100,1000", "push leg: subscriber counts")
	flag.DurationVar(&s.pushDur, "push-duration", 5*time.Second, "push leg: how long each system is driven per subscriber count")
	flag.IntVar(&s.pushRounds, "push-rounds", 2, "push leg: rounds per system and N (the systems alternate)")
	flag.IntVar(&s.pushPar, "push-publishers", 4, "push leg: concurrent publishers (HTTP clients)")
	flag.IntVar(&s.pushWin, "push-window", 16, "push leg: publications in flight (published, not yet received by all subscribers)")
	flag.BoolVar(&s.pushInProcess, "push-in-process", false, "push leg: drive the stack's in-process gateway instead of a gateway process (for CPU profiles)")
	flag.StringVar(&s.cfBin, "centrifugo", "", "Centrifugo binary (empty: build it once into the user cache dir with go install)")
	flag.StringVar(&s.cfVersion, "centrifugo-version", "v6.9.1", "Centrifugo version to build when -centrifugo is empty")
	gsizes := flag.String("growth-sizes", "10000,100000,1000000", "data growth: store sizes (messages) to fill to and measure at, in order")
	flag.StringVar(&s.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (load generator, gateway, connector, embedded servers) to `file`")
	flag.StringVar(&s.pprofAddr, "pprof", "", "serve net/http/pprof of this process on `addr` (e.g. 127.0.0.1:6060)")
	flag.StringVar(&s.profileDir, "profile-dir", "", "also capture CPU profiles of the chat and transfer function processes during each single-chat step into `dir`")
	flag.StringVar(&s.logLevel, "log", "error", "log level of the system under test: debug, info, warn or error")
	flag.Parse()

	s.scenarios = map[string]bool{}
	for _, n := range strings.Split(*scen, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if !contains(allScenarios, n) {
			fatal(fmt.Errorf("unknown scenario %q (have %s)", n, strings.Join(allScenarios, ", ")))
		}
		s.scenarios[n] = true
	}
	s.rates = floats(*rates)
	s.search = floats(*search)
	s.groupRates = floats(*grates)
	s.hotRates = floats(*hrates)
	s.hotGroupRates = floats(*hgrates)
	for _, f := range floats(*pushN) {
		s.pushN = append(s.pushN, int(f))
	}
	for _, f := range floats(*gsizes) {
		s.growthSizes = append(s.growthSizes, int(f))
	}
	return s
}

// system is what the scenarios share.
type system struct {
	set   settings
	stack *stack.Stack
	iss   *token.Issuer
	store *store.Store
	root  string
	tmp   string
	run   string // unique suffix of this run's user ids
	rep   *report
}

func main() {
	set := parseFlags()
	raiseFileLimit()

	var level slog.Level
	check(level.UnmarshalText([]byte(set.logLevel)))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	slog.SetLogLoggerLevel(slog.LevelDebug) // per-call logs of faas-provider and connector-sdk

	if set.cpuProfile != "" {
		f, err := os.Create(set.cpuProfile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if set.profileDir != "" {
		check(os.MkdirAll(set.profileDir, 0o755))
	}
	if set.pprofAddr != "" {
		go servePprof(set.pprofAddr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := os.Getwd()
	check(err)
	if _, err := os.Stat("stack.yml"); err != nil {
		fatal(fmt.Errorf("run from the repository root (no stack.yml here): %w", err))
	}
	tmp, err := os.MkdirTemp("", "easychat-bench-")
	check(err)
	defer os.RemoveAll(tmp)

	sys := &system{set: set, root: root, tmp: tmp, rep: newReport(set),
		run: strconv.FormatInt(time.Now().UnixNano()%1e8, 36)}

	spreadSources = set.conns > 20000
	// A port free on every address: the runtime checks ":<port>".
	faasPort := 0
	if l, err := net.Listen("tcp", ":0"); err == nil {
		faasPort = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	progress("starting the system (builds every function on first use)…")
	t0 := time.Now()
	sys.stack, err = stack.Start(ctx, stack.Config{
		RepoRoot: root, StateDir: tmp + "/state",
		KafkaBrokers: os.Getenv("KAFKA_BROKERS"), MongoURI: os.Getenv("MONGO_URI"),
		FerretPGURL: os.Getenv("FERRETDB_POSTGRESQL_URL"), RedisURL: os.Getenv("REDIS_URL"),
		KafkaPartitions: int32(set.partitions),
		FaasPort:        faasPort,
		ConnectorBatch:  set.batch,
		ChatBatch:       set.chatBatch,
		Logger:          log,
		// The bench measures the system, not its abuse limits: a load
		// generator is one client sending as fast as it is told to.
		Gateway: func(c *server.Config) { c.FrameRate, c.APIRate = 0, 0 },
	})
	check(err)
	defer sys.stack.Close()
	progress("system up in %v", time.Since(t0).Round(100*time.Millisecond))
	sys.iss = token.New(sys.stack.JWTSecret(), 24*time.Hour)
	sys.store, err = store.Open(ctx, sys.stack.MongoURI, "easychat")
	check(err)
	defer sys.store.Close(context.Background())

	if set.profileDir != "" {
		check(sys.enableFunctionPprof(ctx, "chat", "transfer"))
	}

	for _, name := range allScenarios {
		if !set.scenarios[name] || ctx.Err() != nil {
			continue
		}
		progress("scenario %s", name)
		// Scenarios measured step by step report CPU per step; the others
		// report it for the whole scenario.
		var cpu *cpuMeter
		if !contains([]string{"single", "group", "hot", "hotgroup"}, name) {
			cpu = sys.startCPU()
		}
		var err error
		asLoadgen(ctx, func(ctx context.Context) { err = sys.scenario(ctx, name) })
		if cpu != nil {
			sys.rep.note("%s: CPU over the whole scenario: %s", name, cpu.stop())
		}
		if err != nil {
			sys.rep.note("%s: FAILED: %v", name, err)
			progress("scenario %s failed: %v", name, err)
		}
	}
	sys.rep.print(os.Stdout)
}

// scenario runs one scenario.
func (sys *system) scenario(ctx context.Context, name string) error {
	switch name {
	case "single":
		return sys.single(ctx)
	case "group":
		return sys.group(ctx)
	case "hot":
		return sys.hot(ctx)
	case "hotgroup":
		return sys.hotGroup(ctx)
	case "cold":
		return sys.cold(ctx)
	case "conns":
		return sys.connections(ctx)
	case "push":
		return sys.pushLeg(ctx)
	case "growth":
		return sys.growth(ctx)
	}
	return fmt.Errorf("no scenario %s", name)
}

// raiseFileLimit lifts RLIMIT_NOFILE to its hard limit: the connections
// scenario holds thousands of sockets on each side (child processes inherit it).
func raiseFileLimit() {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return
	}
	r.Cur = r.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
}

func fileLimit() uint64 {
	var r syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r.Cur
}

func kind(v, def string) string {
	if v == "" {
		return def
	}
	// Show the host only: URLs may carry credentials.
	v = v[strings.LastIndex(v, "@")+1:]
	if i := strings.Index(v, "://"); i >= 0 {
		v = v[i+3:]
	}
	return "external " + strings.SplitN(v, "/", 2)[0]
}

func floats(s string) []float64 {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 {
			fatal(fmt.Errorf("%q: want positive numbers", s))
		}
		out = append(out, f)
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func check(err error) {
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(2)
}
