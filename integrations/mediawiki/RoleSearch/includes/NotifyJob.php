<?php
/**
 * Tells rolesearch which pages changed (POST /admin/notify). Queued by the page hooks, so an edit never
 * waits on rolesearch; identical jobs still queued are merged. A failure is logged and not retried:
 * rolesearch's periodic sync (serve --sync-every) is the safety net.
 */

namespace MediaWiki\Extension\RoleSearch;

use GenericParameterJob;
use Job;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;

class NotifyJob extends Job implements GenericParameterJob {
	public function __construct( array $params ) {
		parent::__construct( 'roleSearchNotify', $params );
		$this->removeDuplicates = true;
	}

	/** The same pages queued twice are one job, whatever the event. */
	public function getDeduplicationInfo() {
		$info = parent::getDeduplicationInfo();
		unset( $info['params']['event'] );
		return $info;
	}

	public function run() {
		$services = MediaWikiServices::getInstance();
		$config = $services->getMainConfig();
		$base = rtrim( (string)$config->get( 'RoleSearchUrl' ), '/' );
		if ( $base === '' ) {
			return true;
		}
		$timeout = max( 1.0, (float)$config->get( 'RoleSearchTimeout' ) );
		$req = $services->getHttpRequestFactory()->create( $base . '/admin/notify', [
			'method' => 'POST', 'timeout' => $timeout, 'connectTimeout' => $timeout,
			'postData' => json_encode( [ 'pages' => $this->params['pages'], 'event' => $this->params['event'] ?? null ] ),
		], __METHOD__ );
		$req->setHeader( 'Content-Type', 'application/json' );
		$secret = (string)$config->get( 'RoleSearchSecret' );
		if ( $secret !== '' ) {
			$req->setHeader( 'X-RoleSearch-Secret', $secret );
		}
		$status = $req->execute();
		if ( !$status->isOK() || $req->getStatus() !== 202 ) {
			LoggerFactory::getInstance( 'RoleSearch' )->info( 'RoleSearch: notify of pages {pages} failed: {status} {error}', [
				'pages' => implode( ',', $this->params['pages'] ), 'status' => $req->getStatus(),
				'error' => $status->isOK() ? substr( (string)$req->getContent(), 0, 200 ) : (string)$status,
			] );
		}
		return true;
	}
}
