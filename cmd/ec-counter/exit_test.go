package main

import (
	"testing"

	"github.com/ec-counter/ec-counter/checker"
	"github.com/ec-counter/ec-counter/harness"
)

func TestCampaignExit(t *testing.T) {
	run := func(v checker.Validity) harness.CampaignRun {
		return harness.CampaignRun{Outcome: &harness.Outcome{Result: checker.Result{Valid: v}}}
	}
	valid, invalid, unknown := run(checker.Valid), run(checker.Invalid), run(checker.Unknown)
	crashed := harness.CampaignRun{}
	for _, c := range []struct {
		runs []harness.CampaignRun
		want int
	}{
		{[]harness.CampaignRun{valid, valid}, exitValid},
		{[]harness.CampaignRun{valid, unknown}, exitUnknown},
		{[]harness.CampaignRun{unknown, invalid, valid}, exitInvalid}, // invalid outranks unknown
		{[]harness.CampaignRun{invalid, unknown}, exitInvalid},
		{[]harness.CampaignRun{invalid, crashed, valid}, exitCrashed},
		{nil, exitValid},
	} {
		if got := campaignExit(c.runs); got != c.want {
			t.Errorf("campaignExit(%d runs) = %d, want %d", len(c.runs), got, c.want)
		}
	}
}
