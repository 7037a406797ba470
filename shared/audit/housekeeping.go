package audit

// HousekeepingDone is written once per housekeeping tick with how many rows
// each retention delete removed and the cut-offs it used.
const HousekeepingDone = "housekeeping_done"
