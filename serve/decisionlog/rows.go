// Package decisionlog is the policy server's decision and reward log: an append-only
// write-ahead log (WAL) with group commit, from which hive-partitioned Parquet files are
// cut, the recovery of logs a crash left behind, and readers.
//
// Layout under a log directory DIR:
//
//	DIR/wal/<segment>.wal                                  WAL segments not yet cut
//	DIR/wal/<replica>.lock                                 held (flock) by a live writer
//	DIR/decisions/date=YYYY-MM-DD/arm=NAME/part-<segment>.parquet
//	DIR/rewards/date=YYYY-MM-DD/arm=NAME/part-<segment>.parquet
//
// A segment is named <UTC start time>-<replica>-<sequence>; the Parquet files cut from it
// carry its name, so cutting a segment twice (after a crash between publishing its files
// and deleting it) finds its files already published and writes nothing twice.
package decisionlog

import "time"

// DecisionRow is one row of the decision log: a served /act.
//
// Propensities: ActionPropensity is the probability with which the server chose the
// action given the arm (the policy's probability of it with --sample; 1 when greedy, a
// deterministic choice); ArmPropensity is the probability with which the session's arm
// was chosen when the session was assigned (the canary weight, the Thompson-sampling
// allocation, or 1 when the client named the arm). Propensity is ActionPropensity x
// ArmPropensity on the decision that assigned the session's arm and ActionPropensity on
// every other decision, so the product of Propensity over the steps of a session's first
// episode is the probability of the (arm, actions) sequence under the serving system.
type DecisionRow struct {
	EventID          string    `parquet:"event_id" json:"event_id"`
	TS               time.Time `parquet:"ts,timestamp(microsecond)" json:"ts"`
	SessionID        string    `parquet:"session_id" json:"session_id"`
	Episode          int64     `parquet:"episode" json:"episode"`
	Step             int64     `parquet:"step" json:"step"`
	Arm              string    `parquet:"arm" json:"arm"`
	Policy           string    `parquet:"policy" json:"policy"`
	ModelSHA256      string    `parquet:"model_sha256" json:"model_sha256"`
	Instruction      string    `parquet:"instruction" json:"instruction"`
	Observation      string    `parquet:"observation" json:"observation"`
	AvailableActions []string  `parquet:"available_actions,list" json:"available_actions"`
	Action           string    `parquet:"action" json:"action"`
	ActionIndex      int32     `parquet:"action_index" json:"action_index"`
	Probabilities    []float32 `parquet:"probabilities,list" json:"probabilities"`
	Propensity       float64   `parquet:"propensity" json:"propensity"`
	ActionPropensity float64   `parquet:"action_propensity" json:"action_propensity"`
	ArmPropensity    float64   `parquet:"arm_propensity" json:"arm_propensity"`
	Sampled          bool      `parquet:"sampled" json:"sampled"`
	Value            float64   `parquet:"value" json:"value"`
	LatencyUS        int64     `parquet:"latency_us" json:"latency_us"`
}

// DecisionKey is the part of a decision row that identifies it and its session: what
// rebuilding the server's sessions needs, read without the observation and the actions.
type DecisionKey struct {
	EventID       string    `parquet:"event_id" json:"event_id"`
	TS            time.Time `parquet:"ts,timestamp(microsecond)" json:"ts"`
	SessionID     string    `parquet:"session_id" json:"session_id"`
	Episode       int64     `parquet:"episode" json:"episode"`
	Step          int64     `parquet:"step" json:"step"`
	Arm           string    `parquet:"arm" json:"arm"`
	ArmPropensity float64   `parquet:"arm_propensity" json:"arm_propensity"`
}

// Key returns the row's DecisionKey.
func (r *DecisionRow) Key() DecisionKey {
	return DecisionKey{EventID: r.EventID, TS: r.TS, SessionID: r.SessionID, Episode: r.Episode,
		Step: r.Step, Arm: r.Arm, ArmPropensity: r.ArmPropensity}
}

// Reward sources.
const (
	// SourceFeedback is a reward posted to POST /feedback.
	SourceFeedback = "feedback"
	// SourceTimeout is the reward 0 of an episode that got none within the reward timeout.
	SourceTimeout = "timeout"
)

// RewardRow is one row of the reward log: the end of a session's episode.
type RewardRow struct {
	// EventID is the event the reward was posted for, or the episode's last event when
	// the reward came by session id or by timeout.
	EventID   string    `parquet:"event_id" json:"event_id"`
	SessionID string    `parquet:"session_id" json:"session_id"`
	Episode   int64     `parquet:"episode" json:"episode"`
	Arm       string    `parquet:"arm" json:"arm"`
	TS        time.Time `parquet:"ts,timestamp(microsecond)" json:"ts"`
	Reward    float64   `parquet:"reward" json:"reward"`
	Success   bool      `parquet:"success" json:"success"`
	Steps     int64     `parquet:"steps" json:"steps"`
	// Source is SourceFeedback or SourceTimeout.
	Source string `parquet:"source" json:"source"`
}
