package store

import (
	"context"
	"fmt"
)

// pgPatientRxLockSpace is the first key of the two-key advisory lock that
// serialises the prescription checks of one patient on PostgreSQL (the
// two-key space does not overlap the one-key locks of postgres.go).
const pgPatientRxLockSpace = 0x6b6170

// PatientPrescriptionsTx returns, inside the episode's transaction, the
// current (not deleted) MedicationRequest and Medication resources of
// patientID mapped from episodes other than episodeID: what the
// prescription rules need to find a second active ketamine prescription
// across episodes. Resources pulled from partner EHRs belong to no
// episode and are left out (a partner's copy of our own prescription must
// not block it). On PostgreSQL it first takes a transaction-scoped lock
// on the patient, so two episodes of one patient accepted at the same
// time are checked one after the other and cannot both pass (SQLite has a
// single writer).
func (s *Store) PatientPrescriptionsTx(ctx context.Context, tx Tx, patientID, episodeID string) ([]Resource, error) {
	q := tx.querier()
	if tx.pgx != nil {
		if err := q.exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pgPatientRxLockSpace, patientID); err != nil {
			return nil, fmt.Errorf("lock prescriptions of patient %s: %w", patientID, err)
		}
	}
	// patient_id <> '' lets SQLite use the partial index resource_patient
	// (without it the plan scans every MedicationRequest of the database).
	rs, err := q.query(ctx, `SELECT r.type, r.id, v.body FROM resource r
		JOIN resource_version v ON v.type = r.type AND v.id = r.id AND v.version_id = r.version_id
		WHERE r.patient_id = $1 AND r.patient_id <> '' AND r.type IN ('MedicationRequest', 'Medication') AND r.deleted = $2 AND r.version_id > 0
		AND EXISTS (SELECT 1 FROM episode_resource e WHERE e.episode_id <> $3 AND e.type = r.type AND e.id = r.id)
		ORDER BY r.type, r.id`, patientID, false, episodeID)
	if err != nil {
		return nil, fmt.Errorf("read prescriptions of patient %s: %w", patientID, err)
	}
	out, err := scanPatientResources(rs, patientID)
	if err != nil {
		return nil, fmt.Errorf("read prescriptions of patient %s: %w", patientID, err)
	}
	return out, nil
}

// scanPatientResources reads rows of (type, id, body) of one patient's
// resources.
func scanPatientResources(rs rows, patientID string) ([]Resource, error) {
	var out []Resource
	err := eachRow(rs, func(r rows) error {
		res := Resource{PatientID: patientID}
		if err := r.Scan(&res.Type, &res.ID, &res.Body); err != nil {
			return err
		}
		out = append(out, res)
		return nil
	})
	return out, err
}
