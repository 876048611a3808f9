// Who the server thinks we are: SelfSubjectReview (what `kubectl auth whoami` shows).
import { api } from './api';

export interface UserInfo {
  username: string;
  groups: string[];
}

export async function whoAmI(): Promise<UserInfo> {
  const review = await api<{ status?: { userInfo?: { username?: string; groups?: string[] } } }>(
    '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      method: 'POST',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
  const info = review.status?.userInfo ?? {};
  return { username: info.username ?? '', groups: info.groups ?? [] };
}
