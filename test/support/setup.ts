// The AWS SDK tells Node 20 users once per process that it will need Node 22 from 2027 (the
// container runs Node 22). In test output it would bury real failures; other warnings still print.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (!warning.message.includes('NodeVersionSupportWarning')) console.warn(`warning: ${warning.name}: ${warning.message}`);
});
