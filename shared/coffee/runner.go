package coffee

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Windows of the fairness rule (DESIGN.md §2.4).
const (
	ActiveWindowDays   = 14 // a candidate must have ordered within this many days
	FairnessWindowDays = 30 // completed runs are counted over this many days
)

// Candidate is someone who could be the runner, with their completed runs
// in the fairness window (cancelled runs do not count).
type Candidate struct {
	UserID        string
	CompletedRuns int
}

// Assignment is the outcome of PickRunner.
type Assignment struct {
	RunnerUserID string // empty when nobody can go
	Volunteer    bool
	Reason       string // shown in the thread: who and why
}

// PickRunner chooses the runner: a volunteer if there is one; otherwise the
// candidate with the fewest completed runs, ties broken by user id so the
// choice is deterministic.
func PickRunner(volunteer string, cands []Candidate) Assignment {
	if volunteer != "" {
		return Assignment{RunnerUserID: volunteer, Volunteer: true, Reason: "volunteered"}
	}
	if len(cands) == 0 {
		return Assignment{Reason: "nobody ordered"}
	}
	cs := slices.Clone(cands)
	slices.SortFunc(cs, func(a, b Candidate) int {
		if a.CompletedRuns != b.CompletedRuns {
			return a.CompletedRuns - b.CompletedRuns
		}
		return strings.Compare(a.UserID, b.UserID)
	})
	counts := make([]int, len(cs))
	for i, c := range cs {
		counts[i] = c.CompletedRuns
	}
	reason := fmt.Sprintf("%s in the last %d days; team median %s",
		plural(cs[0].CompletedRuns, "run"), FairnessWindowDays, formatMedian(Median(counts)))
	if len(cs) > 1 && cs[1].CompletedRuns == cs[0].CompletedRuns {
		reason += "; tie broken by user id"
	}
	return Assignment{RunnerUserID: cs[0].UserID, Reason: reason}
}

// Median of counts (0 for none).
func Median(counts []int) float64 {
	if len(counts) == 0 {
		return 0
	}
	s := slices.Clone(counts)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return float64(s[n/2])
	}
	return float64(s[n/2-1]+s[n/2]) / 2
}

// StdDev is the population standard deviation of counts: the fairness
// spread exported as a gauge.
func StdDev(counts []int) float64 {
	if len(counts) == 0 {
		return 0
	}
	var sum float64
	for _, c := range counts {
		sum += float64(c)
	}
	mean := sum / float64(len(counts))
	var v float64
	for _, c := range counts {
		d := float64(c) - mean
		v += d * d
	}
	return math.Sqrt(v / float64(len(counts)))
}

func formatMedian(m float64) string {
	if m == float64(int(m)) {
		return fmt.Sprint(int(m))
	}
	return fmt.Sprintf("%.1f", m)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
