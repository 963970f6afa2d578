// Start a building permit application, as the citizen portal of the original design does.
// No token: `make run` serves building-permit as a public workflow (README, "Try it").
//
//   node examples/clients/startPermit.js        # prints: Instance ID: <uuid>
//
// HMS_URL is the service's address (default http://127.0.0.1:8000). Node 18+ (built-in fetch).
const BASE_URL = process.env.HMS_URL || 'http://127.0.0.1:8000';

async function startPermit() {
  const response = await fetch(`${BASE_URL}/api/workflows/start`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      workflowId: 'building-permit',
      payload: { applicant: 'Jane Citizen', address: '12 High Street' },
    }),
  });
  const data = await response.json();
  if (!response.ok) {
    console.error(`Could not start: ${response.status} ${data.error}: ${data.detail}`);
    process.exit(1);
  }
  console.log(`Instance ID: ${data.instanceId}`);
  console.log(`Case number: ${data.caseNumber}`);
  console.log(`Track it at: ${BASE_URL}${data.trackerUrl}`);
}

startPermit().catch((error) => {
  console.error(`Could not reach ${BASE_URL}: ${error.message}`);
  process.exit(1);
});
