package book

import (
	"flag"
	"os" //nolint:depguard // the golden test reads testdata and, with -update, writes it; the package stays pure
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden runs each testdata/*.txt script and compares what it printed with the
// .golden file beside it. Regenerate with: go test ./services/matching/book -update
func TestGolden(t *testing.T) {
	t.Parallel()
	scripts, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no testdata/*.txt")
	}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(script)
			if err != nil {
				t.Fatal(err)
			}
			steps, err := parseScript(string(src))
			if err != nil {
				t.Fatalf("%s: %v", script, err)
			}
			_, got, err := runScript(New(), steps)
			if err != nil {
				t.Fatalf("%s: %v\noutput so far:\n%s", script, err, got)
			}
			golden := strings.TrimSuffix(script, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s: output differs from %s (run with -update to accept)\n%s",
					script, golden, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff lists the lines that differ between want and got, numbered.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var sb strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			sb.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
		}
	}
	return sb.String()
}
