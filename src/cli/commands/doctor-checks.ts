/** Deep checks of a physical testbed for `nuksm doctor` (logic in src/testbeds/physical/doctor.ts). */
export { doctorChecks, formatFindings, type DoctorFinding, type DoctorStatus } from '../../testbeds/physical/doctor.ts';
