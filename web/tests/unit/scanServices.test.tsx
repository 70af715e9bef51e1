// The discovery panel's services list: a database in a Docker container is listed apart from
// the host's own, with its container named.
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, expect, test } from 'vitest';
import type { Schemas } from '../../src/api/client';
import '../../src/i18n';
import { Services } from '../../src/features/scan/ScanPanel';

afterEach(cleanup);

test('a service in a container is its own line, saying which container', () => {
  const report: Schemas['ScanReport'] = {
    root: true,
    services: [
      { kind: 'postgresql', name: 'PostgreSQL', version: '15.5', running: true, ports: [5432], evidence: ['version', 'port'] },
      { kind: 'postgresql', name: 'PostgreSQL', version: '16.2', running: true, ports: [15432], evidence: ['container'], container: 'db' },
    ],
  };
  render(<Services report={report} />);
  const items = screen.getAllByRole('listitem').map((li) => li.textContent);
  expect(items).toEqual(['PoPostgreSQL 15.5 · port 5432', 'PoPostgreSQL 16.2 · port 15432 · in container db']);
});
