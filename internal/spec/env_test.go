package spec

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

func TestCheckSecrets(t *testing.T) {
	data, err := os.ReadFile("testdata/valid-secret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse("aim.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		have []string
		want string
	}{
		{"all set", []string{"OPENAI_API_KEY", "other.key-2"}, ""},
		{"one missing", []string{"OPENAI_API_KEY"}, "aim.yaml:10: components[0].env.OTHER: secret \"other.key-2\" is not set for solution chat: set it first with `aim secret set chat other.key-2` (the value on stdin)"},
		{"none set", nil, "aim.yaml:8: components[0].env.OPENAI_API_KEY: secret \"OPENAI_API_KEY\" is not set for solution chat: set it first with `aim secret set chat OPENAI_API_KEY` (the value on stdin)\n" +
			"aim.yaml:10: components[0].env.OTHER: secret \"other.key-2\" is not set for solution chat: set it first with `aim secret set chat other.key-2` (the value on stdin)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have := func(n string) bool {
				for _, h := range tc.have {
					if h == n {
						return true
					}
				}
				return false
			}
			got := ""
			if err := CheckSecrets("aim.yaml", data, m, have); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	if got := m.Secrets(); len(got) != 2 || got[0] != "OPENAI_API_KEY" || got[1] != "other.key-2" {
		t.Errorf("Secrets() = %v", got)
	}
	two := &Manifest{Components: []Component{
		{Name: "web", Env: map[string]EnvValue{"A": SecretRef("K"), "B": SecretRef("K")}},
		{Name: "api", Env: map[string]EnvValue{"C": Plain("K")}},
		{Name: "worker", Env: map[string]EnvValue{"D": SecretRef("K")}},
	}}
	if got := two.SecretUsers("K"); !slices.Equal(got, []string{"web", "worker"}) {
		t.Errorf("SecretUsers(K) = %v, want [web worker]: each user once, a plain value is no use", got)
	}
	if got := (*Manifest)(nil).SecretUsers("K"); got != nil || two.UsesSecret("other") {
		t.Errorf("a nil manifest's users %v; UsesSecret(other) %v", got, two.UsesSecret("other"))
	}
}

// TestEnvValueJSON: manifests stored before secrets existed have plain
// strings, and read back as they were written.
func TestEnvValueJSON(t *testing.T) {
	var c Component
	if err := json.Unmarshal([]byte(`{"name":"web","env":{"A":"1","B":{"secret":"K"}}}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Env["A"] != Plain("1") || c.Env["B"] != SecretRef("K") {
		t.Fatalf("decoded %+v", c.Env)
	}
	b, _ := json.Marshal(c.Env)
	if string(b) != `{"A":"1","B":{"secret":"K"}}` {
		t.Errorf("encoded %s", b)
	}
	if err := json.Unmarshal([]byte(`{"name":"web","env":{"A":{"value":"x"}}}`), &c); err == nil {
		t.Error("an object without secret was accepted")
	}
}
