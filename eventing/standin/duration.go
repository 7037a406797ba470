package standin

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Approximate lengths Knative (via rickb777/period) uses when an ISO-8601
// duration carries calendar units.
const (
	day   = 24 * time.Hour
	week  = 7 * day
	month = time.Duration(30.436875 * float64(day))
	year  = time.Duration(365.2425 * float64(day))
)

// ParseISO8601Duration parses an ISO-8601 duration as Knative's delivery
// fields use them: "PT0.2S", "PT1S", "PT1M30S", "P1DT2H", "P2W". The last
// component given may carry a fraction ("PT0.5S", "PT1.5M", "P0.5D"; "," is
// accepted as the decimal mark, as ISO-8601 allows). Years and months use
// average lengths. Signs, empty designators ("P", "PT") and repeated or
// out-of-order components are rejected.
func ParseISO8601Duration(s string) (time.Duration, error) {
	orig := s
	fail := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("standin: invalid ISO-8601 duration %q: %s", orig, why)
	}
	if !strings.HasPrefix(s, "P") {
		return fail(`must start with "P"`)
	}
	s = s[1:]
	if s == "" {
		return fail("no components")
	}
	type unit struct {
		designator byte
		size       time.Duration
	}
	dateUnits := []unit{{'Y', year}, {'M', month}, {'W', week}, {'D', day}}
	timeUnits := []unit{{'H', time.Hour}, {'M', time.Minute}, {'S', time.Second}}

	var total float64 // nanoseconds
	inTime := false
	units := dateUnits
	next := 0 // index of the earliest unit still allowed
	sawFraction := false
	sawComponent := false
	for s != "" {
		if s[0] == 'T' {
			if inTime {
				return fail(`repeated "T"`)
			}
			inTime, units, next = true, timeUnits, 0
			s = s[1:]
			if s == "" {
				return fail(`no components after "T"`)
			}
			continue
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
			i++
		}
		if i == 0 {
			return fail(fmt.Sprintf("expected a number at %q", s))
		}
		if i == len(s) {
			return fail(fmt.Sprintf("number %q has no unit designator", s))
		}
		num := strings.Replace(s[:i], ",", ".", 1)
		if strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") {
			return fail(fmt.Sprintf("malformed number %q", s[:i]))
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return fail(fmt.Sprintf("malformed number %q", s[:i]))
		}
		if sawFraction {
			return fail("only the last component may have a fraction")
		}
		sawFraction = strings.Contains(num, ".")
		d := s[i]
		found := -1
		for j := next; j < len(units); j++ {
			if units[j].designator == d {
				found = j
				break
			}
		}
		if found < 0 {
			return fail(fmt.Sprintf("unexpected designator %q", string(d)))
		}
		next = found + 1
		total += v * float64(units[found].size)
		if total > math.MaxInt64 {
			return fail("overflows time.Duration")
		}
		sawComponent = true
		s = s[i+1:]
	}
	if !sawComponent {
		return fail("no components")
	}
	return time.Duration(math.Round(total)), nil
}
