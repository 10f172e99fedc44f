package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// CPU is an amount of CPU in millicores. In YAML it is a number of cores
// (0.5, "2") or Kubernetes millicores ("500m").
type CPU int64

// ParseCPU reads "0.5", "2" or "500m".
func ParseCPU(s string) (CPU, error) {
	s = strings.TrimSpace(s)
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a CPU amount (use cores like 0.5 or millicores like 500m)", s)
		}
		return CPU(n), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a CPU amount (use cores like 0.5 or millicores like 500m)", s)
	}
	m := CPU(math.Round(f * 1000))
	if m == 0 {
		return 0, fmt.Errorf("%q is less than 1m of CPU", s)
	}
	return m, nil
}

// Cores is the amount in cores.
func (c CPU) Cores() float64 { return float64(c) / 1000 }

func (c CPU) String() string {
	if c%1000 == 0 {
		return strconv.FormatInt(int64(c)/1000, 10)
	}
	return strconv.FormatInt(int64(c), 10) + "m"
}

func (c *CPU) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseCPU(n.Value)
	if err != nil {
		return nodeError(n, err)
	}
	*c = v
	return nil
}

func (c CPU) MarshalYAML() (any, error) { return c.String(), nil }

func (c CPU) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

func (c *CPU) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		s = string(b)
	}
	v, err := ParseCPU(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ByteSize is a number of bytes. In YAML it is a plain number or carries a
// unit: Ki, Mi, Gi (also KiB, MiB, GiB) are powers of 1024, K, M, G (KB, MB,
// GB) powers of 1000.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"K", 1e3}, {"M", 1e6}, {"G", 1e9},
	{"B", 1},
}

// ParseByteSize reads "512Mi", "10MiB", "1G" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	num := s
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size (use e.g. 256Mi, 10MiB or 1G)", s)
	}
	return ByteSize(f * float64(mult)), nil
}

func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		m int64
	}{{"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if int64(b) >= u.m && int64(b)%u.m == 0 {
			return strconv.FormatInt(int64(b)/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return nodeError(n, err)
	}
	*b = v
	return nil
}

func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		s = string(data)
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Duration is a time.Duration written as "30m" or "1h30m".
type Duration time.Duration

func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration (use e.g. 30s, 10m or 1h)", s)
	}
	return Duration(d), nil
}

func (d Duration) String() string { return time.Duration(d).String() }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return nodeError(n, err)
	}
	*d = v
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30m\"")
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// nodeError reports a bad value as yaml's own type errors are reported, so
// that decoding goes on and the error carries the line.
func nodeError(n *yaml.Node, err error) error {
	if n.Kind != yaml.ScalarNode {
		err = errors.New("expected a single value, got a list or mapping")
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %v", n.Line, n.Column, err)}}
}
