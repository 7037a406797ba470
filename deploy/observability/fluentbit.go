package observability

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Fluent Bit is not packaged for Debian bookworm and nothing else can fetch
// it here, so the tests cannot run the real binary. Instead this file reads
// the configuration the DaemonSet runs (classic format) and applies it to
// log lines the way Fluent Bit does, following its source:
//
//   - the tail input's built-in `cri` multiline parser: "<time> <stream>
//     <F|P> <log>", partial (P) lines joined to the next full (F) one;
//   - the `parser` filter: Key_Name's value through the named parser,
//     Reserve_Data keeping the other keys, Preserve_Key keeping Key_Name;
//   - a `json` parser with Time_Key, Time_Format, Time_Keep and
//     Time_Strict (flb_parser.c: the format is split at %L, the part
//     before it goes through flb_strptime, then up to 9 digits of fraction
//     (parse_subseconds), then the part after it through flb_strptime; a
//     time that does not parse fails the record under Time_Strict);
//   - flb_strptime's directives that a format here may use: %Y %m %d %H %M
//     %S %T %F %z (Z, UTC, GMT, ±hh, ±hhmm, ±hh:mm) and literals. Any other
//     directive is an error, so a format outside what is emulated cannot
//     pass unnoticed.
//
// The config parser is strict the same way: an unknown key of a parser or
// filter it emulates is an error.

// Section is one [SECTION] of a classic Fluent Bit configuration; keys are
// lower-cased (Fluent Bit's are case-insensitive).
type Section struct {
	Kind string // SERVICE, INPUT, FILTER, OUTPUT, PARSER, MULTILINE_PARSER
	Keys map[string]string
}

// Get returns the value of key (case-insensitive).
func (s Section) Get(key string) string { return s.Keys[strings.ToLower(key)] }

// ParseClassic reads a classic-format configuration: [SECTION] headers,
// indented "Key Value" lines, # comments.
func ParseClassic(path string) ([]Section, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Section
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			out = append(out, Section{Kind: strings.ToUpper(strings.Trim(line, "[]")), Keys: map[string]string{}})
		case strings.HasPrefix(line, "@"):
			return nil, fmt.Errorf("%s:%d: directive %q is not supported here", path, n, line)
		default:
			if len(out) == 0 {
				return nil, fmt.Errorf("%s:%d: %q outside a section", path, n, line)
			}
			k, v, _ := strings.Cut(line, " ")
			k = strings.ToLower(k)
			if _, dup := out[len(out)-1].Keys[k]; dup {
				return nil, fmt.Errorf("%s:%d: %s set twice in one section", path, n, k)
			}
			out[len(out)-1].Keys[k] = strings.TrimSpace(v)
		}
	}
	return out, sc.Err()
}

// Parser is a [PARSER] of Format json.
type Parser struct {
	Name       string
	TimeKey    string
	TimeFormat string
	TimeKeep   bool
	TimeStrict bool
}

var parserKeys = map[string]bool{"name": true, "format": true, "time_key": true, "time_format": true, "time_keep": true, "time_strict": true}

func onOff(v string) bool {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1":
		return true
	}
	return false
}

func newParser(s Section) (Parser, error) {
	for k := range s.Keys {
		if !parserKeys[k] {
			return Parser{}, fmt.Errorf("parser %s: key %s is not emulated", s.Get("name"), k)
		}
	}
	if f := strings.ToLower(s.Get("format")); f != "json" {
		return Parser{}, fmt.Errorf("parser %s: format %q is not emulated (json is)", s.Get("name"), f)
	}
	p := Parser{Name: s.Get("name"), TimeKey: s.Get("time_key"), TimeFormat: s.Get("time_format"),
		TimeKeep: onOff(s.Get("time_keep")), TimeStrict: true}
	if v := s.Get("time_strict"); v != "" {
		p.TimeStrict = onOff(v)
	}
	return p, nil
}

// Record is an event as Fluent Bit carries it: a timestamp and a map.
type Record struct {
	Time   time.Time
	Fields map[string]any
}

// Parse applies p to one log line, as flb_parser_json_do does.
func (p Parser) Parse(line string, now time.Time) (Record, error) {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return Record{}, fmt.Errorf("parser %s: not a JSON object: %w", p.Name, err)
	}
	rec := Record{Time: now, Fields: m}
	if p.TimeKey == "" {
		return rec, nil
	}
	v, ok := m[p.TimeKey].(string)
	if !ok {
		return rec, nil // no time key: the record keeps the ingestion time
	}
	t, err := FluentBitTime(v, p.TimeFormat)
	if err != nil {
		if p.TimeStrict {
			return Record{}, fmt.Errorf("parser %s: cannot parse %s %q: %w", p.Name, p.TimeKey, v, err)
		}
		return rec, nil
	}
	rec.Time = t
	if !p.TimeKeep {
		delete(m, p.TimeKey)
	}
	return rec, nil
}

// FluentBitTime parses value with a Fluent Bit Time_Format.
func FluentBitTime(value, format string) (time.Time, error) {
	if len(value) > 63 {
		return time.Time{}, errors.New("time string too long (Fluent Bit's limit is 63 bytes)")
	}
	before, after, frac := format, "", false
	if i := strings.Index(format, "%L"); i >= 0 {
		before, after, frac = format[:i], format[i+2:], true
	}
	var tm strptimeResult
	rest, err := strptime(value, before, &tm)
	if err != nil {
		return time.Time{}, err
	}
	if frac {
		digits := 0
		for digits < len(rest) && digits < 9 && rest[digits] >= '0' && rest[digits] <= '9' {
			digits++
		}
		if digits == 0 {
			return time.Time{}, errors.New("cannot parse %L: no fraction")
		}
		n, _ := strconv.Atoi(rest[:digits] + strings.Repeat("0", 9-digits))
		tm.nsec = n
		if rest, err = strptime(rest[digits:], after, &tm); err != nil {
			return time.Time{}, fmt.Errorf("after %%L: %w", err)
		}
	}
	_ = rest // flb_strptime ignores what follows the format
	return time.Date(tm.year, time.Month(tm.mon), tm.mday, tm.hour, tm.min, tm.sec, tm.nsec, time.FixedZone("", tm.gmtoff)), nil
}

type strptimeResult struct {
	year, mon, mday, hour, min, sec, nsec, gmtoff int
}

// strptime is flb_strptime for the directives listed above; it returns
// what is left of s.
func strptime(s, format string, tm *strptimeResult) (string, error) {
	num := func(lo, hi, maxDigits int, what string) (int, error) {
		n, i := 0, 0
		for i < len(s) && i < maxDigits && s[i] >= '0' && s[i] <= '9' {
			n = n*10 + int(s[i]-'0')
			i++
		}
		if i == 0 || n < lo || n > hi {
			return 0, fmt.Errorf("%s: want %d..%d at %q", what, lo, hi, s)
		}
		s = s[i:]
		return n, nil
	}
	var err error
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			if len(s) == 0 || s[0] != c {
				return "", fmt.Errorf("literal %q not found at %q", c, s)
			}
			s = s[1:]
			continue
		}
		i++
		if i == len(format) {
			return "", errors.New("format ends in %")
		}
		switch format[i] {
		case 'Y':
			tm.year, err = num(0, 9999, 4, "%Y")
		case 'm':
			tm.mon, err = num(1, 12, 2, "%m")
		case 'd':
			tm.mday, err = num(1, 31, 2, "%d")
		case 'H':
			tm.hour, err = num(0, 23, 2, "%H")
		case 'M':
			tm.min, err = num(0, 59, 2, "%M")
		case 'S':
			tm.sec, err = num(0, 60, 2, "%S")
		case 'T':
			s, err = strptime(s, "%H:%M:%S", tm)
		case 'F':
			s, err = strptime(s, "%Y-%m-%d", tm)
		case 'z':
			s, err = zone(s, tm)
		case '%':
			if len(s) == 0 || s[0] != '%' {
				err = errors.New("literal % not found")
			} else {
				s = s[1:]
			}
		default:
			return "", fmt.Errorf("directive %%%c is not emulated", format[i])
		}
		if err != nil {
			return "", err
		}
	}
	return s, nil
}

// zone is flb_strptime's %z.
func zone(s string, tm *strptimeResult) (string, error) {
	s = strings.TrimLeft(s, " \t")
	switch {
	case strings.HasPrefix(s, "Z"):
		tm.gmtoff = 0
		return s[1:], nil
	case strings.HasPrefix(s, "UTC"):
		tm.gmtoff = 0
		return s[3:], nil
	case strings.HasPrefix(s, "UT"), strings.HasPrefix(s, "GMT"):
		tm.gmtoff = 0
		return strings.TrimPrefix(strings.TrimPrefix(s, "GMT"), "UT"), nil
	case strings.HasPrefix(s, "+"), strings.HasPrefix(s, "-"):
	default:
		return "", fmt.Errorf("%%z: no zone at %q", s)
	}
	neg := s[0] == '-'
	s = s[1:]
	if len(s) < 2 || !isDigit(s[0]) || !isDigit(s[1]) {
		return "", fmt.Errorf("%%z: want hh at %q", s)
	}
	off := (int(s[0]-'0')*10 + int(s[1]-'0')) * 3600
	s = s[2:]
	s = strings.TrimPrefix(s, ":")
	if len(s) > 0 && isDigit(s[0]) {
		if len(s) < 2 || !isDigit(s[1]) {
			return "", fmt.Errorf("%%z: want mm at %q", s)
		}
		off += (int(s[0]-'0')*10 + int(s[1]-'0')) * 60
		s = s[2:]
	}
	if neg {
		off = -off
	}
	tm.gmtoff = off
	return s, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// criLine is Fluent Bit's built-in cri multiline parser's rule.
var criLine = regexp.MustCompile(`^(?P<time>.+?) (?P<stream>stdout|stderr) (?P<_p>F|P) (?P<log>.*)$`)

// CRI turns container runtime log lines into records with time, stream
// and log, joining partial lines.
func CRI(lines []string) ([]Record, error) {
	var out []Record
	var partial strings.Builder
	for _, l := range lines {
		m := criLine.FindStringSubmatch(l)
		if m == nil {
			return nil, fmt.Errorf("not a CRI log line: %q", l)
		}
		partial.WriteString(m[4])
		if m[3] == "P" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			return nil, fmt.Errorf("CRI time %q: %w", m[1], err)
		}
		// The built-in parser's Time_Key is time, without Time_Keep.
		out = append(out, Record{Time: t, Fields: map[string]any{"stream": m[2], "_p": m[3], "log": partial.String()}})
		partial.Reset()
	}
	return out, nil
}

// Pipeline is the part of a Fluent Bit configuration that shapes records:
// its parser filters in order, with the parsers they use.
type Pipeline struct {
	Sections []Section
	Parsers  map[string]Parser
	Filters  []Section // [FILTER] Name parser, in order
}

var parserFilterKeys = map[string]bool{"name": true, "match": true, "key_name": true, "parser": true, "reserve_data": true, "preserve_key": true}

// LoadPipeline reads conf and the Parsers_File its [SERVICE] names.
func LoadPipeline(conf string) (Pipeline, error) {
	secs, err := ParseClassic(conf)
	if err != nil {
		return Pipeline{}, err
	}
	p := Pipeline{Sections: secs, Parsers: map[string]Parser{}}
	for _, s := range secs {
		switch {
		case s.Kind == "SERVICE" && s.Get("parsers_file") != "":
			ps, err := ParseClassic(filepath.Join(filepath.Dir(conf), s.Get("parsers_file")))
			if err != nil {
				return Pipeline{}, err
			}
			for _, ps := range ps {
				if ps.Kind != "PARSER" {
					continue
				}
				parser, err := newParser(ps)
				if err != nil {
					return Pipeline{}, err
				}
				p.Parsers[parser.Name] = parser
			}
		case s.Kind == "FILTER" && strings.EqualFold(s.Get("name"), "parser"):
			for k := range s.Keys {
				if !parserFilterKeys[k] {
					return Pipeline{}, fmt.Errorf("parser filter: key %s is not emulated", k)
				}
			}
			p.Filters = append(p.Filters, s)
		}
	}
	for _, f := range p.Filters {
		if _, ok := p.Parsers[f.Get("parser")]; !ok {
			return Pipeline{}, fmt.Errorf("parser filter uses parser %q, which no Parsers_File defines", f.Get("parser"))
		}
	}
	return p, nil
}

// Apply runs rec through the parser filters, as filter_parser does: the
// parsed fields replace the record (with Reserve_Data, beside its other
// keys), the timestamp becomes the parsed one; a value that does not
// parse leaves the record as it was and is reported.
func (p Pipeline) Apply(rec Record) (Record, error) {
	for _, f := range p.Filters {
		key := f.Get("key_name")
		v, ok := rec.Fields[key].(string)
		if !ok {
			continue
		}
		parsed, err := p.Parsers[f.Get("parser")].Parse(v, rec.Time)
		if err != nil {
			return rec, err
		}
		out := Record{Time: parsed.Time, Fields: parsed.Fields}
		if onOff(f.Get("reserve_data")) {
			for k, v := range rec.Fields {
				if k == key && !onOff(f.Get("preserve_key")) {
					continue
				}
				if _, clash := out.Fields[k]; !clash {
					out.Fields[k] = v
				}
			}
		} else if onOff(f.Get("preserve_key")) {
			out.Fields[key] = v
		}
		rec = out
	}
	return rec, nil
}
