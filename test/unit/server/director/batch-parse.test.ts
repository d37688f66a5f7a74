import { describe, expect, it } from 'vitest';
import { parseQstatFull, parseQstatXml, parseSqueue, parseSubmitted } from '../../../../src/server/director/drivers/batch-parse.js';

describe('what the batch systems print', () => {
  it('the job id of sbatch --parsable and of each qsub', () => {
    expect(parseSubmitted('slurm', '4242\n')).toBe('4242');
    expect(parseSubmitted('slurm', '4242;cluster2\n')).toBe('4242');
    expect(parseSubmitted('sge', 'Your job 17 ("vmp-x-hpc-a") has been submitted\n')).toBe('17');
    expect(parseSubmitted('pbs', '123.pbs01.example.org\n')).toBe('123.pbs01.example.org');
    expect(parseSubmitted('pbs', '123\n')).toBe('123'); // Slurm's PBS-style qsub
    expect(parseSubmitted('slurm', 'sbatch: error: Batch job submission failed\n')).toBeNull();
  });

  it('squeue -h -t all -o %i|%j|%T|%V', () => {
    const out = '101|vmp-x-hpc-a|PENDING|2024-05-01T10:00:00\n102|vmp-x-hpc-b|RUNNING|2024-05-01T10:00:01\n103|vmp-x-hpc-c|COMPLETED|2024-05-01T09:00:00\n104|other|CANCELLED|N/A\n';
    expect(parseSqueue(out).map((j) => [j.id, j.name, j.state, j.native])).toEqual([
      ['101', 'vmp-x-hpc-a', 'pending', 'PENDING'],
      ['102', 'vmp-x-hpc-b', 'running', 'RUNNING'],
      ['103', 'vmp-x-hpc-c', 'ended', 'COMPLETED'],
      ['104', 'other', 'ended', 'CANCELLED'],
    ]);
    expect(parseSqueue(out)[0]!.submittedAt).toBe(new Date('2024-05-01T10:00:00').getTime());
    expect(parseSqueue(out)[3]!.submittedAt).toBeNull();
  });

  it('qstat -f of PBS and Torque', () => {
    const out = `Job Id: 12.server
    Job_Name = vmp-x-hpc-a
    Job_Owner = pilot@login
    job_state = Q
    queue = batch
    ctime = Wed May  1 10:00:00 2024
    qtime = Wed May  1 10:00:00 2024

Job Id: 13.server
    Job_Name = vmp-x-hpc-b
    job_state = R
    qtime = Wed May  1 10:00:01 2024

Job Id: 14.server
    Job_Name = vmp-x-hpc-c
    job_state = C
`;
    expect(parseQstatFull(out).map((j) => [j.id, j.name, j.state])).toEqual([
      ['12.server', 'vmp-x-hpc-a', 'pending'],
      ['13.server', 'vmp-x-hpc-b', 'running'],
      ['14.server', 'vmp-x-hpc-c', 'ended'],
    ]);
    expect(parseQstatFull(out)[0]!.submittedAt).toBe(new Date(2024, 4, 1, 10, 0, 0).getTime());
  });

  it('qstat -xml of Grid Engine, running and pending, errors ended', () => {
    const out = `<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>12</JB_job_number>
      <JAT_prio>0.55500</JAT_prio>
      <JB_name>vmp-x-hpc-a</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2024-05-01T10:00:05</JAT_start_time>
      <queue_name>all.q@localhost</queue_name>
      <slots>2</slots>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>13</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>vmp-x-hpc-b</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2024-05-01T10:00:06</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
    <job_list state="pending">
      <JB_job_number>14</JB_job_number>
      <JB_name>vmp-x-hpc-c</JB_name>
      <state>Eqw</state>
      <JB_submission_time>2024-05-01T10:00:07</JB_submission_time>
    </job_list>
  </job_info>
</job_info>
`;
    expect(parseQstatXml(out).map((j) => [j.id, j.name, j.state, j.native])).toEqual([
      ['12', 'vmp-x-hpc-a', 'running', 'r'],
      ['13', 'vmp-x-hpc-b', 'pending', 'qw'],
      ['14', 'vmp-x-hpc-c', 'ended', 'Eqw'],
    ]);
    expect(parseQstatXml('<?xml version=\'1.0\'?>\n<job_info>\n  <queue_info>\n  </queue_info>\n  <job_info>\n  </job_info>\n</job_info>\n')).toEqual([]);
  });
});
