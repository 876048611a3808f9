// Start-up: read /console/config.json, restore or finish the login, then the shell
// (discovery, who am I) around the routed page.
import { useEffect, useState, useSyncExternalStore } from 'react';
import { Shell } from './components/Shell';
import { LoginPage } from './pages/LoginPage';
import { loadConfig, loggedIn, restore, subscribe, type ConsoleConfig } from './lib/session';

export function App() {
  const [config, setConfig] = useState<ConsoleConfig | null>(null);
  const [error, setError] = useState('');
  const authenticated = useSyncExternalStore(subscribe, loggedIn);

  useEffect(() => {
    loadConfig()
      .then(async (c) => {
        await restore().catch((e: Error) => setError(`Login failed: ${e.message}`));
        setConfig(c);
      })
      .catch((e: Error) => setError(`Cannot load the console configuration: ${e.message}`));
  }, []);

  if (!config) {
    return <main className="centered">{error ? <p role="alert">{error}</p> : <p>Loading…</p>}</main>;
  }
  if (!authenticated) return <LoginPage config={config} error={error} />;
  return <Shell />;
}
