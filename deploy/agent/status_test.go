package main

import (
	"testing"
	"time"
)

var (
	t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

func TestTheStatusIsCompactJSONInTheDocumentedOrder(t *testing.T) {
	s := Status{Pool: "spin-3", Desired: "ab", State: StateFailed, Reason: "a <b> & c", Since: "2026-05-01T10:00:00Z", Attempts: 2, Changed: ""}
	want := `{"pool":"spin-3","desired":"ab","state":"failed","reason":"a <b> & c","since":"2026-05-01T10:00:00Z","attempts":2,"changed":""}`
	if got := s.Encode(); got != want {
		t.Errorf("Encode() =\n%s\nwant\n%s", got, want)
	}
	back, ok := ParseStatus(want)
	if !ok || back != s {
		t.Errorf("ParseStatus = %+v, %v", back, ok)
	}
	for _, bad := range []string{"", "not json", `{"pool":"x"}`} {
		if _, ok := ParseStatus(bad); ok {
			t.Errorf("ParseStatus(%q) read a status", bad)
		}
	}
}

func TestSinceMovesOnlyWhenTheStateOrTheReasonChanges(t *testing.T) {
	conv := NextStatus(Status{}, "p", "d1", StateConverged, "", "installed x", t0)
	if conv.Since != "2026-05-01T10:00:00Z" || conv.Changed != "installed x" || conv.Attempts != 0 {
		t.Fatalf("first status %+v", conv)
	}
	again := NextStatus(conv, "p", "d1", StateConverged, "", "", t1)
	if again != conv {
		t.Errorf("an unchanged converged node got a new status: %+v", again)
	}
	failed := NextStatus(again, "p", "d1", StateFailed, "x", "", t1)
	if failed.Since == conv.Since || failed.Attempts != 1 || failed.Changed != "installed x" {
		t.Errorf("failed %+v", failed)
	}
	later := NextStatus(failed, "p", "d1", StateFailed, "x", "", t1.Add(time.Hour))
	if later.Since != failed.Since || later.Attempts != 2 {
		t.Errorf("the same failure again %+v", later)
	}
	other := NextStatus(later, "p", "d1", StateFailed, "y", "", t1.Add(2*time.Hour))
	if other.Since == later.Since || other.Attempts != 3 {
		t.Errorf("another failure %+v", other)
	}
}

func TestAttemptsSurviveAPassInProgressAndStartAgainForANewDesiredState(t *testing.T) {
	failed := Status{Pool: "p", Desired: "d1", State: StateFailed, Reason: "x", Since: "s", Attempts: 3, Changed: "c"}
	converging := NextStatus(failed, "p", "d1", StateConverging, "", "", t0)
	if converging.Attempts != 3 {
		t.Errorf("converging dropped the count: %+v", converging)
	}
	if next := NextStatus(converging, "p", "d1", StateFailed, "x", "", t0); next.Attempts != 4 {
		t.Errorf("the next failure counted %d", next.Attempts)
	}
	fresh := NextStatus(failed, "p", "d2", StateFailed, "x", "", t0)
	if fresh.Attempts != 1 || fresh.Changed != "" || fresh.Since == failed.Since {
		t.Errorf("a new desired state inherited %+v", fresh)
	}
	if ok := NextStatus(failed, "p", "d1", StateConverged, "", "", t0); ok.Attempts != 0 {
		t.Errorf("converged with attempts %d", ok.Attempts)
	}
	if refused := NextStatus(failed, "p", "d1", StateRefused, "r", "", t0); refused.Attempts != 0 {
		t.Errorf("refused with attempts %d", refused.Attempts)
	}
}

func TestTheChangeSummaryIsCut(t *testing.T) {
	long := ""
	for i := 0; i < 100; i++ {
		long += "installed x; "
	}
	if s := NextStatus(Status{}, "p", "d", StateConverged, "", long, t0); len(s.Changed) != maxChanged {
		t.Errorf("changed is %d bytes", len(s.Changed))
	}
}
