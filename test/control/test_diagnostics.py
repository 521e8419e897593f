"""PlannerStats: the policy/world-model disagreements planner_node shows in /diagnostics."""
from lewm_ros.control.diagnostics import PlannerStats
from lewm_ros.control.safety import SafetyState


def test_disagreements_are_counted_in_all_and_over_the_recent_window():
    stats = PlannerStats(window=4)
    assert stats.report(SafetyState.OK, 0.01, 'torch', 'm', 'cem', 0).values['policy_disagreements_recent_pct'] == 'n/a'
    for disagreement in (True, True, False, False, False, True):
        stats.plan_finished(0.01, 1.0, 0.0, disagreement)
    values = stats.report(SafetyState.OK, 0.01, 'torch', 'm', 'cem', 0).values
    assert values['policy_disagreements'] == '3'
    assert values['policy_disagreements_recent_pct'] == '25.0'  # 1 of the last 4 plans


def test_boundary_frame_counters_are_reported():
    values = PlannerStats().report(SafetyState.OK, 0.01, 'torch', 'm', 'cem', 0, None, 2, 7).values
    assert values['boundary_frames_late'] == '2' and values['boundary_frames_waited'] == '7'
