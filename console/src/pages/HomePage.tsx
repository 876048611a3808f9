import { useConsole } from '../lib/context';

export function HomePage() {
  const { user, kinds, namespace } = useConsole();
  return (
    <>
      <h1>Welcome</h1>
      <p>Signed in as <strong data-testid="username">{user.username}</strong>
        {user.groups.length > 0 && <> (groups: {user.groups.join(', ')})</>}.</p>
      <p>The server serves {kinds.length} kinds; the navigation shows those you may list
        {namespace ? <> in namespace <strong>{namespace}</strong></> : null}.</p>
    </>
  );
}
