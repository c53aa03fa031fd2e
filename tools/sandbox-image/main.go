// Command sandbox is the whole of the e2e sandbox image: an HTTP server on the template's
// port that reports, from inside the running container, what the hardened template
// promises (uid/gid, capabilities, seccomp, read-only root, a writable /tmp, no
// service-account token, the memory limit), and a pause mode for the pod sandbox image.
//
//	sandbox [serve]    serve on $PORT (default 8888): /healthz, /checks, /alloc?mib=N, /fill?mib=N
//	sandbox pause      block until SIGTERM/SIGINT (the pod's infra container)
//	sandbox alloc N    touch N MiB of memory, then exit 0 (run by /alloc in a child)
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

const tokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

func main() {
	mode := "serve"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "serve":
		serve()
	case "pause":
		pause()
	case "alloc":
		mib, err := strconv.Atoi(os.Args[2])
		if err != nil {
			os.Exit(2)
		}
		alloc(mib)
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q; allowed: serve, pause, alloc\n", mode)
		os.Exit(2)
	}
}

func pause() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}

func alloc(mib int) {
	chunks := make([][]byte, 0, mib)
	for i := 0; i < mib; i++ {
		chunk := make([]byte, 1<<20)
		for j := 0; j < len(chunk); j += 4096 {
			chunk[j] = 1 // touch every page, so that it is really charged to the cgroup
		}
		chunks = append(chunks, chunk)
	}
	fmt.Println(len(chunks))
}

func serve() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8888"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/checks", func(w http.ResponseWriter, _ *http.Request) { reply(w, checks()) })
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mib, err := strconv.Atoi(r.URL.Query().Get("mib"))
		if err != nil || mib <= 0 {
			http.Error(w, "mib: a positive integer", http.StatusBadRequest)
			return
		}
		reply(w, allocInChild(mib))
	})
	mux.HandleFunc("/fill", func(w http.ResponseWriter, r *http.Request) {
		mib, err := strconv.Atoi(r.URL.Query().Get("mib"))
		if err != nil || mib <= 0 {
			http.Error(w, "mib: a positive integer", http.StatusBadRequest)
			return
		}
		reply(w, fill(mib))
	})
	fmt.Fprintf(os.Stderr, "serving on :%s\n", port)
	if err := http.ListenAndServe(":"+port, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func reply(w http.ResponseWriter, value any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(value)
}

// procStatus returns the fields of /proc/self/status (CapEff, Seccomp, NoNewPrivs, ...).
func procStatus() map[string]string {
	fields := map[string]string{}
	file, err := os.Open("/proc/self/status")
	if err != nil {
		return fields
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if key, value, ok := strings.Cut(scanner.Text(), ":"); ok {
			fields[key] = strings.TrimSpace(value)
		}
	}
	return fields
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(data))
}

func checks() map[string]any {
	status := procStatus()
	rootWrite := os.WriteFile("/write-probe", []byte("x"), 0o600)
	tmpWrite := os.WriteFile("/tmp/write-probe", []byte("x"), 0o600)
	_ = os.Remove("/tmp/write-probe")
	var tmp syscall.Statfs_t
	tmpErr := syscall.Statfs("/tmp", &tmp)
	_, tokenErr := os.Stat(tokenPath)
	var uname syscall.Utsname
	_ = syscall.Uname(&uname)
	release := make([]byte, 0, len(uname.Release))
	for _, c := range uname.Release {
		if c == 0 {
			break
		}
		release = append(release, byte(c))
	}
	dmesg, dmesgErr := kernelLog()
	groups, _ := os.Getgroups()
	return map[string]any{
		"uid": os.Getuid(), "gid": os.Getgid(), "groups": groups,
		"capEff": status["CapEff"], "capPrm": status["CapPrm"], "capBnd": status["CapBnd"],
		"seccomp": status["Seccomp"], "noNewPrivs": status["NoNewPrivs"],
		"rootWriteError": errorText(rootWrite), "tmpWriteError": errorText(tmpWrite),
		"tmpBytes": uint64(tmp.Blocks) * uint64(tmp.Bsize), "tmpFsType": fmt.Sprintf("%#x", tmp.Type),
		"tmpStatError":               errorText(tmpErr),
		"serviceAccountTokenMounted": tokenErr == nil,
		// cgroup v1 and v2 paths; the one that does not exist reports its error.
		"memoryLimitV1": readTrimmed("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
		"memoryLimitV2": readTrimmed("/sys/fs/cgroup/memory.max"),
		"kernelRelease": string(release), "dmesg": dmesg, "dmesgError": errorText(dmesgErr),
	}
}

// kernelLog reads the kernel ring buffer (syslog(2) READ_ALL), as dmesg does. Under gVisor
// this is the Sentry's own log, which says so.
func kernelLog() (string, error) {
	buf := make([]byte, 1<<16)
	n, err := syscall.Klogctl(3, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// allocInChild touches `mib` MiB in a child process: the cgroup's OOM killer ends the child,
// not the server, when that is over the container's memory limit.
func allocInChild(mib int) map[string]any {
	self, err := os.Executable()
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	out, err := exec.Command(self, "alloc", strconv.Itoa(mib)).Output()
	result := map[string]any{"mib": mib, "output": strings.TrimSpace(string(out)), "exitCode": 0, "signal": ""}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		result["exitCode"] = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			result["signal"] = ws.Signal().String()
		}
	} else if err != nil {
		result["error"] = err.Error()
	}
	return result
}

// fill writes `mib` MiB to /tmp/fill: past the emptyDir's sizeLimit the kubelet evicts the pod.
func fill(mib int) map[string]any {
	file, err := os.Create("/tmp/fill")
	if err != nil {
		return map[string]any{"mib": mib, "written": 0, "error": err.Error()}
	}
	defer file.Close()
	chunk := make([]byte, 1<<20)
	written := 0
	for ; written < mib; written++ {
		if _, err := file.Write(chunk); err != nil {
			return map[string]any{"mib": mib, "written": written, "error": err.Error()}
		}
	}
	err = file.Sync()
	return map[string]any{"mib": mib, "written": written, "error": errorText(err)}
}
